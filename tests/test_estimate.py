"""The plan's time and memory estimate (facelora.estimate) from measured step figures."""

from facelora.config import TrainConfig
from facelora.estimate import MEASURED, Measured, device_kind, estimate, fixed_gib


def table(kind: str) -> tuple[Measured, ...]:
    return (Measured(kind, 512, "fp32", False, 10.0, 8.0, "cmd-512"),
            Measured(kind, 256, "fp32", False, 3.0, 6.0, "cmd-256"))


def test_measured_figures_are_real_and_name_their_command():
    assert MEASURED
    for m in MEASURED:
        assert m.step_s > 0 and m.peak_gib > 0 and m.source.startswith("python bench/train_step.py")


def test_time_comes_from_the_nearest_resolution_on_this_machine_and_scales_with_pixels():
    kind = device_kind("cpu")
    cfg = TrainConfig(resolution="512", train_batch_size=2, mixed_precision="no")
    e = estimate(cfg, 100, "cpu", table(kind))
    assert e.step_s == 20.0 and e.total_s == 2000.0
    assert "cmd-512" in e.basis
    small = estimate(TrainConfig(resolution="256", mixed_precision="no"), 100, "cpu", table(kind))
    assert small.step_s == 3.0 and "cmd-256" in small.basis
    assert e.peak_gib > small.peak_gib  # two 512 px images hold more activations than one 256 px image


def test_memory_follows_the_rank_and_the_trained_parts():
    full = TrainConfig(network_dim=128)
    assert fixed_gib(TrainConfig(network_dim=256), False) > fixed_gib(full, False)
    assert fixed_gib(TrainConfig(network_dim=128, network_train_unet_only=True), False) < fixed_gib(full, False)


def test_another_machine_gets_memory_but_no_time():
    e = estimate(TrainConfig(mixed_precision="no"), 100, "cpu", table("cpu: some other CPU x64, 64 threads"))
    assert e.step_s is None and e.total_s is None and e.peak_gib > 0
    assert "no measured step time" in e.lines()[0]


def test_an_accumulated_step_takes_its_batches_time_not_their_memory():
    kind = device_kind("cpu")
    one = estimate(TrainConfig(resolution="512", mixed_precision="no"), 100, "cpu", table(kind))
    two = estimate(TrainConfig(resolution="512", mixed_precision="no", gradient_accumulation_steps=2), 100, "cpu",
                   table(kind))
    assert (one.step_s, two.step_s, two.total_s) == (10.0, 20.0, 2000.0)
    assert two.peak_gib == one.peak_gib and "gradient accumulation" in two.basis
