"""facelora: train a Stable Diffusion 1.5 LoRA of one real person and measure how alike it is."""

__version__ = "0.1.0"
