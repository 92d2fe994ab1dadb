"""Training: the loop (loop.py: train(project, cfg) -> TrainResult) and the parts it calls: data,
loss, optimizers, checkpoints, samples, progress, state."""
