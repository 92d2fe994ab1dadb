"""The device benchmark: one prepared command for the first machine with a CUDA GPU.

    bash bench/gpu.sh                              # = python bench/gpu.py --device cuda (at most ~8 min)
    python bench/gpu.py --device cpu --dry-run     # the tiny model at 1/8 of the sizes, 1 step each (its test)

On the SD1.5-architecture model (random weights built on the device from the shipped configs,
src/facelora/model/sd15/*/config.json; rank 128 / alpha 64, cached latents, the text encoder's
LoRA trained too) at 512 px it runs facelora's own training step (train.step's prepare_network
and Stepper.run, as train() puts them together) in fp16 and bf16 at batch 1, 4 and 8, AdamW
against AdamW8bit, with and without gradient checkpointing, full_bf16 and full_fp16 at batch 4,
the tutorial's settings at 512 and 768 px, and bench/reference.py's plain diffusers + peft loop
in the same run. For each: it/s, images/s, the peak of torch.cuda.max_memory_allocated (over
what was allocated before the model was built, so the weights count; the peak is reset once it
is built, leaving out the fp32 transient of making random weights on the card), facelora.vram's
modelled figure beside it, and FLOP/s against the GPU's dense bf16 peak where the GPU is known.
Writes gpu.json and gpu.md into --out and prints the table.

Configurations run one after another in this process (each freed before the next); one that
does not start within --budget-s is listed as skipped, one that runs out of memory as OOM.
facelora.vram.calibrated(gpu.json) fits the VRAM plan's activation model to these peaks.

The CPU test run goes through CUDA's code as far as a CPU can: fp16 with the GradScaler (as the
trainer's tests do), the frozen UNet and text encoder stored in the autocast dtype (CUDA's layout,
which the trainer keeps fp32 on the CPU), bitsandbytes' optimizers, SDPA attention; only the
torch.cuda calls (synchronize, the memory counters, the card's name) are CUDA's alone.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import patch

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import dense_bf16_peak, machine  # noqa: E402

RANK, ALPHA = 128, 64
CAPTION = "photo of ohwx man"

# --- the adapter: the only place this benchmark reaches into facelora's trainer -----------------
# (if train/step.py or model/sdmodel.py change, these two functions are what to fix.)


def random_model(config_dir: Path, device: torch.device):
    """The UNet and text encoder of `config_dir` with random weights, made on the device (fast
    even for SD1.5); no VAE: the latents are cached."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from facelora.model.sdmodel import SDModel, noise_scheduler, read_config, shipped_tokenizer

    with torch.device(device):
        unet = UNet2DConditionModel.from_config(read_config(config_dir, "unet"))
        te = CLIPTextModel(CLIPTextConfig.from_json_file(config_dir / "text_encoder" / "config.json"))
    return SDModel(unet, te, None, shipped_tokenizer(), noise_scheduler(), name="random", config_dir=config_dir)


def facelora_step(model, cfg, device: torch.device):
    """train()'s own optimizer step on `model` as `cfg` sets it up; returns step(latents). On the
    CPU the frozen weights are stored as on CUDA (the autocast dtype), so a test run takes the
    paths a GPU takes."""
    from facelora.train import precision, step as step_module
    from facelora.train.data import Batch
    from facelora.train.optim import make_optimizer, make_scheduler
    from facelora.train.state import LoopState
    from facelora.train.step import Stepper, make_accelerator, prepare_network

    accelerator = make_accelerator(cfg.mixed_precision, cpu=device.type == "cpu", full_fp16=cfg.full_fp16)
    def cuda_layout(mixed_precision: str, _device: torch.device) -> torch.dtype:
        return precision.frozen_dtype(mixed_precision, torch.device("cuda"))

    with patch.object(step_module, "frozen_dtype", cuda_layout):
        network, _ = prepare_network(model, cfg, accelerator.device)
    optim = make_optimizer(cfg, network.unet_parameters(), network.text_encoder_parameters())
    scheduler = make_scheduler(cfg, optim, total_steps=1000)
    network, optimizer, scheduler = accelerator.prepare(network, optim.optimizer, scheduler)
    stepper = Stepper(model, network, optimizer, scheduler, accelerator, cfg)
    state = LoopState(cfg.seed)

    def step(latents: torch.Tensor) -> None:
        stepper.run([Batch(list(range(len(latents))), [CAPTION] * len(latents), latents=latents)], state)
        state.global_step += 1

    # what the step really holds, for gpu.json: the dtypes found, and the scaler's kind
    step.layout = {"frozen": str(next(model.unet.parameters()).dtype).removeprefix("torch."),
                   "lora": str(stepper.trainable[0].dtype).removeprefix("torch."),
                   "scaler": type(accelerator.scaler).__name__ if accelerator.scaler is not None else None}
    return step


# --- the configurations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    impl: str  # "facelora" | "reference"
    precision: str  # "fp16" | "bf16"
    batch: int
    optimizer: str = "AdamW"
    checkpointing: bool = False
    size: int = 512
    label: str = ""
    full: bool = False  # full_fp16 / full_bf16: the LoRA itself in the autocast dtype

    def config(self, size: int) -> dict:
        """The TrainConfig fields of this case (Kohya names), as gpu.json records them."""
        return dict(resolution=str(size), train_batch_size=self.batch, mixed_precision=self.precision,
                    optimizer_type=self.optimizer, gradient_checkpointing=self.checkpointing,
                    network_dim=RANK, network_alpha=float(ALPHA), cache_latents=True,
                    **{f"full_{self.precision}": self.full})


CASES = (  # the most wanted first: facelora / reference at batch 1 bf16
    Case("reference", "bf16", 1), Case("facelora", "bf16", 1),
    Case("reference", "fp16", 1), Case("facelora", "fp16", 1),
    Case("facelora", "bf16", 4), Case("facelora", "fp16", 4), Case("facelora", "bf16", 8),
    Case("facelora", "bf16", 1, "AdamW8bit"), Case("facelora", "bf16", 4, "AdamW8bit"),
    Case("facelora", "bf16", 1, checkpointing=True), Case("facelora", "bf16", 4, checkpointing=True),
    Case("facelora", "fp16", 1, "AdamW8bit", label="tutorial"),
    Case("facelora", "fp16", 1, "AdamW8bit", True, label="tutorial"),
    Case("facelora", "fp16", 1, "AdamW8bit", True, 768, label="tutorial"),
    Case("facelora", "fp16", 1, "AdamW8bit", False, 768, label="tutorial"),
    Case("reference", "bf16", 4),
    Case("facelora", "bf16", 4, label="full_bf16", full=True),
    Case("facelora", "fp16", 4, label="full_fp16", full=True),
)


def build(case: Case, size: int, device: torch.device, tiny: bool):
    """step(latents) for the case, on a freshly built model."""
    from facelora.config import TrainConfig
    from facelora.model.sdmodel import SD15_DIR, TINY_CONFIG_DIR

    config_dir = TINY_CONFIG_DIR if tiny else SD15_DIR
    if case.impl == "reference":
        import reference

        with torch.device(device):
            ref = reference.ReferenceStep(size, RANK, ALPHA, case.batch, case.checkpointing, str(device),
                                          config_dir=config_dir)
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[case.precision]
        return lambda latents: ref.step(dtype)
    cfg = TrainConfig(**case.config(size))
    return facelora_step(random_model(config_dir, device), cfg, device)


def measure(case: Case, a: argparse.Namespace, device: torch.device) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from facelora.config import TrainConfig
    from facelora.model.sdmodel import SD15_DIR, TINY_CONFIG_DIR
    from facelora.vram import memory_parts, model_sizes

    cuda = device.type == "cuda"
    size = case.size // 8 if a.tiny else case.size  # the tiny model: 64 and 96 px
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    before = torch.cuda.memory_allocated() if cuda else 0
    t0 = time.perf_counter()
    step = build(case, size, device, a.tiny)
    build_s = time.perf_counter() - t0
    if cuda:  # the peak from here on starts at what the model holds (weights counted), not at the
        # fp32 transient of building random weights on the card, which a trained run never has
        torch.cuda.reset_peak_memory_stats()
    latents = torch.randn(case.batch, 4, size // 8, size // 8, device=device)
    for _ in range(a.warmup):  # cuBLAS/cuDNN autotuning, allocator growth, bitsandbytes' first step
        step(latents)
    sync()
    counter = FlopCounterMode(display=False)
    with counter:
        step(latents)
    sync()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step(latents)
        sync()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    flops = counter.get_total_flops()
    parts = memory_parts(TrainConfig(**case.config(size)), sizes=model_sizes(TINY_CONFIG_DIR if a.tiny else SD15_DIR))
    out = {"impl": case.impl, "label": case.label, "config": case.config(size), "build_s": round(build_s, 2),
           "step_s": [round(t, 4) for t in times], "median_step_s": round(med, 4), "it_per_s": round(1 / med, 3),
           "images_per_s": round(case.batch / med, 3), "flop_per_step": flops,
           "achieved_tflops": round(flops / med / 1e12, 3),
           "modelled_bytes": sum(v for k, v in parts.items() if k != "CUDA context"),
           "layout": getattr(step, "layout", None)}
    if cuda:
        out["peak_memory_bytes"] = torch.cuda.max_memory_allocated() - before
        out["memory_kind"] = "torch.cuda.max_memory_allocated"
        peak = dense_bf16_peak(torch.cuda.get_device_name())
        out["fraction_of_dense_bf16_peak"] = round(flops / med / peak, 4) if peak else "unknown"
    else:
        import resource

        out["peak_memory_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out["memory_kind"] = "peak resident memory of the process (CPU test run)"
    return out


def run_all(a: argparse.Namespace, device: torch.device) -> list[dict]:
    started, results = time.perf_counter(), []
    for case in CASES:
        if time.perf_counter() - started > a.budget_s:
            results.append({"impl": case.impl, "label": case.label, "config": case.config(case.size),
                            "skipped": f"not started within --budget-s {a.budget_s}"})
            continue
        try:
            results.append(measure(case, a, device))
        except torch.cuda.OutOfMemoryError as e:
            results.append({"impl": case.impl, "label": case.label, "config": case.config(case.size),
                            "oom": str(e).splitlines()[0]})
        except Exception as e:  # noqa: BLE001 - on a first GPU, one broken configuration must not lose the rest
            results.append({"impl": case.impl, "label": case.label, "config": case.config(case.size),
                            "error": f"{type(e).__name__}: {e}"})
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return results


def ratio(results: list[dict], precision: str, batch: int) -> float | None:
    """facelora's it/s over the reference's, at the same precision and batch."""
    def it(impl: str) -> float | None:
        return next((r["it_per_s"] for r in results if r["impl"] == impl and "it_per_s" in r and not r["label"]
                     and r["config"]["mixed_precision"] == precision and r["config"]["train_batch_size"] == batch
                     and r["config"]["optimizer_type"] == "AdamW" and not r["config"]["gradient_checkpointing"]), None)
    f, ref = it("facelora"), it("reference")
    return round(f / ref, 3) if f and ref else None


def table(report: dict) -> str:
    gib = 2**30
    rows = ["| impl | size | precision | batch | optimizer | checkpointing | it/s | images/s | peak GiB "
            "| modelled GiB | TFLOP/s | of dense bf16 peak |", "|" + "---|" * 12]
    for r in report["results"]:
        c = r["config"]
        name = r["impl"] + (f" ({r['label']})" if r["label"] else "")
        head = f"| {name} | {c['resolution']} | {c['mixed_precision']} | {c['train_batch_size']} | " \
               f"{c['optimizer_type']} | {'yes' if c['gradient_checkpointing'] else 'no'} |"
        if "it_per_s" not in r:
            what = "OOM" if "oom" in r else r.get("error") or r.get("skipped")
            rows.append(head + f" {what} |" + " |" * 5)
            continue
        frac = r.get("fraction_of_dense_bf16_peak", "n/a (CPU)")
        frac = f"{frac:.1%}" if isinstance(frac, float) else frac
        rows.append(head + f" {r['it_per_s']:.2f} | {r['images_per_s']:.2f} | {r['peak_memory_bytes'] / gib:.2f} | "
                    f"{r['modelled_bytes'] / gib:.2f} | {r['achieved_tflops']:.1f} | {frac} |")
    m = report["machine"]
    return "\n".join([f"GPU benchmark on {m['gpu'] or 'the CPU (test run)'}, torch {m['torch']}, CUDA {m['cuda']}; "
                      f"dense bf16 peak {m['dense_bf16_peak_tflops']} TFLOP/s.", "",
                      *rows, "", f"facelora / reference it/s: {report['facelora_over_reference']}",
                      f"command: {report['command']}", ""])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--dry-run", "--tiny", dest="tiny", action="store_true",
                    help="The tiny model at 1/8 of the sizes, one timed step each: checks the script in seconds.")
    ap.add_argument("--steps", type=int, help="Timed steps per configuration (default 10; 1 with --dry-run).")
    ap.add_argument("--warmup", type=int, help="Warm-up steps per configuration (default 3; 0 with --dry-run; "
                                               "the FLOP-counting step comes after them).")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own; 1 with --dry-run).")
    ap.add_argument("--budget-s", type=float, default=420, help="Start no configuration after this many seconds.")
    ap.add_argument("--out", type=Path, default=HERE / "gpu-results", help="Folder for gpu.json and gpu.md.")
    a = ap.parse_args(argv)
    a.steps = a.steps or (1 if a.tiny else 10)
    a.warmup = a.warmup if a.warmup is not None else (0 if a.tiny else 3)
    if a.threads or a.tiny:
        torch.set_num_threads(a.threads or 1)  # a shared CPU: a second thread only waits for a core
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py: no CUDA GPU here (torch.cuda.is_available() is False); "
                         "use --device cpu --dry-run to check the script on the CPU.")
    from facelora.fileio import atomic_write_text

    results = run_all(a, device)
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
    peak = dense_bf16_peak(gpu) if gpu else None
    report = {"command": " ".join(["python", "bench/gpu.py", *(argv if argv is not None else sys.argv[1:])]),
              "device": device.type, "tiny": a.tiny,
              "machine": machine(torch=torch.__version__, cuda=torch.version.cuda, gpu=gpu,
                                 cudnn=torch.backends.cudnn.version() if device.type == "cuda" else None,
                                 dense_bf16_peak_tflops=peak / 1e12 if peak else "unknown"),
              "facelora_over_reference": {"bf16 batch 1": ratio(results, "bf16", 1),
                                          "fp16 batch 1": ratio(results, "fp16", 1)},
              "results": results}
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.out / "gpu.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(a.out / "gpu.md", table(report))
    print(table(report))
    if any("error" in r for r in results):
        raise SystemExit("bench/gpu.py: some configurations failed; see 'error' in gpu.json")
    return report


if __name__ == "__main__":
    main()
