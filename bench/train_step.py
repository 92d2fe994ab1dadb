"""How long one LoRA training step takes, and how much memory it needs, on an SD1.5-architecture
model (random weights built from the shipped configs, src/facelora/model/sd15/*/config.json):
rank 128 / alpha 64, batch 1, cached latents, AdamW (--optimizer for another of facelora's optimizer_type names).

    python bench/train_step.py                      # facelora at 256 and 512 px, with and without checkpointing
    python bench/train_step.py --quick              # 256 px, 3 steps: while developing
    python bench/train_step.py --compare-reference  # facelora / bench/reference.py at 512 px, fp32, interleaved
    python bench/train_step.py --device cuda        # adds peak GPU memory and FLOP/s against the GPU's peak
    python bench/train_step.py --without host-memory  # facelora / facelora without one of its speed-ups, interleaved
    python bench/train_step.py --networks locon dora masked --sizes 512 --no-checkpointing
                                                    # LoCon, DoRA and masked loss next to plain LoRA, interleaved
    python bench/train_step.py --tiny --networks locon dora masked  # the tiny model at 64 px: its test
    python bench/train_step.py --quick --optimizer AdamW8bit  # facelora's step with another optimizer_type

facelora's step is train()'s own: facelora.train.step's prepare_network and Stepper.run, with
make_optimizer, make_scheduler and accelerate, as train() puts them together (gradient clipping
at max_grad_norm 1.0 included, as Kohya's default). The reference (bench/reference.py) is the
plainest correct diffusers + peft loop, without clipping.

Each measurement runs in its own subprocess (so peak resident memory is per implementation),
and with --compare-reference the subprocesses alternate A B A B ... so the drift of a shared,
noisy machine falls on both alike. Times are the median of the timed steps after a warm-up step;
the warm-up step also counts the step's FLOPs (torch.utils.flop_counter.FlopCounterMode).
Prints one JSON object: the command, the machine, the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from facelora_step import ALPHA, NETWORKS, RANK, TINY_RANK, WITHOUT, facelora_step
from machine import machine as _machine

HERE = Path(__file__).resolve().parent

# Dense peak FLOP/s of known GPUs (vendor data sheets, SXM parts): fp32 on the CUDA cores and
# bf16/fp16 on the tensor cores. An unknown GPU reports no fraction.
GPU_PEAKS = {
    "H100": {"fp32": 67e12, "bf16": 989e12, "fp16": 989e12},
    "H200": {"fp32": 67e12, "bf16": 989e12, "fp16": 989e12},
    "A100": {"fp32": 19.5e12, "bf16": 312e12, "fp16": 312e12},
}


def machine(threads: int) -> dict:
    import torch

    return _machine(torch=torch.__version__, threads=threads,
                    cpu_capability=torch.backends.cpu.get_cpu_capability(),
                    gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None)

# --- the two implementations, run inside a worker subprocess: facelora_step.py and the reference --


def reference_step(size: int, checkpointing: bool, precision: str, device: str, unet_only: bool):
    import torch

    sys.path.insert(0, str(HERE))
    from reference import ReferenceStep

    ref = ReferenceStep(size, RANK, ALPHA, 1, checkpointing, device, train_text_encoder=not unet_only)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return (lambda: ref.step(dtype)), ref


def stop_above(limit_gib: float) -> None:
    """Ends this worker, with its figure, once its resident memory passes limit_gib: the machine
    is shared, and a variant that needs more is reported by the size it reached."""
    import threading

    def watch() -> None:
        while True:
            rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
            if rss > limit_gib:
                print(json.dumps({"stopped_at_rss_gib": round(rss, 3), "limit_gib": limit_gib}), flush=True)
                os._exit(0)
            time.sleep(0.2)

    threading.Thread(target=watch, daemon=True).start()


def worker(args: argparse.Namespace) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(args.threads)
    stop_above(args.max_rss_gib)
    cuda = args.device == "cuda"
    t0 = time.perf_counter()
    if args.impl == "facelora":
        step, _ = facelora_step(args.size, args.checkpointing, args.precision, args.device, args.unet_only,
                                args.torch_compile, args.channels_last, args.without, args.network, args.optimizer,
                                args.tiny)
    else:
        step, _ = reference_step(args.size, args.checkpointing, args.precision, args.device, args.unet_only)
    build_s = time.perf_counter() - t0

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    warmup_s = []
    for _ in range(args.warmup):  # compilation, allocator growth, oneDNN primitive caches
        t = time.perf_counter()
        step()
        sync()
        warmup_s.append(time.perf_counter() - t)
    flops = None
    if args.count_flops:
        counter = FlopCounterMode(display=False)
        with counter:
            step()
        sync()
        flops = counter.get_total_flops()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    out = {"impl": args.impl, "build_s": round(build_s, 1), "warmup_s": [round(t, 2) for t in warmup_s],
           "step_s": [round(t, 3) for t in times], "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
           "flops": flops}
    if cuda:
        out["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    return out


# --- the driver --------------------------------------------------------------------------------


def run_worker(impl: str, size: int, checkpointing: bool, precision: str, a: argparse.Namespace,
               count_flops: bool, without: str | None = None, network: str = "lora") -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--size", str(size),
           "--precision", precision, "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--threads", str(a.threads), "--device", a.device, "--max-rss-gib", str(a.max_rss_gib)]
    cmd += ["--tiny"] * a.tiny + ["--checkpointing"] * checkpointing + ["--unet-only"] * a.unet_only + ["--count-flops"] * count_flops
    if impl == "facelora":
        cmd += ["--torch-compile"] * a.torch_compile + (["--without", without] if without else [])
        cmd += ["--network", network]
        cmd += ["--optimizer", a.optimizer]
        if a.channels_last is not None:
            cmd += ["--channels-last" if a.channels_last else "--no-channels-last"]
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=str(a.threads))
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not lines:
        raise SystemExit(f"worker failed ({' '.join(cmd)}):\n{p.stderr[-3000:]}")
    return json.loads(lines[-1])


def summarise(runs: list[dict], device: str, precision: str) -> dict:
    stopped = [r for r in runs if "stopped_at_rss_gib" in r]
    if stopped:
        return {"stopped_at_rss_gib": max(r["stopped_at_rss_gib"] for r in stopped), "limit_gib": stopped[0]["limit_gib"]}
    steps = [t for r in runs for t in r["step_s"]]
    med = statistics.median(steps)
    out = {"median_step_s": round(med, 3), "step_s": steps, "rounds": len(runs),
           "peak_rss_gib": max(r["peak_rss_gib"] for r in runs), "build_s": [r["build_s"] for r in runs]}
    flops = next((r["flops"] for r in runs if r.get("flops")), None)
    if flops:
        out["tflop_per_step"] = round(flops / 1e12, 4)
        out["achieved_tflops"] = round(flops / med / 1e12, 3)
    if device == "cuda":
        out["peak_gpu_gib"] = max(r["peak_gpu_gib"] for r in runs)
        import torch

        name = torch.cuda.get_device_name()
        peak = next((v for k, v in GPU_PEAKS.items() if k in name), None)
        if peak and flops:
            key = "fp32" if precision == "fp32" else precision
            out["fraction_of_peak"] = round(flops / med / peak[key], 4)
            out["peak_tflops_assumed"] = peak[key] / 1e12
    return out


def ratios(facelora: dict, other: dict, name: str) -> dict:
    """facelora's time and peak memory over another run's (peak GPU memory too on CUDA)."""
    out = {f"ratio_time_facelora_over_{name}": round(facelora["median_step_s"] / other["median_step_s"], 3),
           f"ratio_peak_rss_facelora_over_{name}": round(facelora["peak_rss_gib"] / other["peak_rss_gib"], 3)}
    if "peak_gpu_gib" in facelora and "peak_gpu_gib" in other:
        out[f"ratio_peak_gpu_facelora_over_{name}"] = round(facelora["peak_gpu_gib"] / other["peak_gpu_gib"], 3)
    return out


def network_ratios(other: dict, lora: dict, net: str) -> dict:
    """A network type's step time and peak memory over plain LoRA's."""
    stopped = {k: r["stopped_at_rss_gib"] for k, r in (("lora", lora), (net, other)) if "stopped_at_rss_gib" in r}
    if stopped:
        return {f"{k}_stopped_at_rss_gib": v for k, v in stopped.items()}
    out = {f"ratio_time_{net}_over_lora": round(other["median_step_s"] / lora["median_step_s"], 3),
           f"ratio_peak_rss_{net}_over_lora": round(other["peak_rss_gib"] / lora["peak_rss_gib"], 3)}
    if "peak_gpu_gib" in other:
        out[f"ratio_peak_gpu_{net}_over_lora"] = round(other["peak_gpu_gib"] / lora["peak_gpu_gib"], 3)
    return out


def arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", choices=["facelora", "reference"], help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=512, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", type=int, nargs="+", help="Image sizes in px (default 256 512; 512 with --compare-reference).")
    ap.add_argument("--checkpointing", action="store_true", help="Only with gradient checkpointing.")
    ap.add_argument("--no-checkpointing", action="store_true", help="Only without gradient checkpointing.")
    ap.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    ap.add_argument("--bf16", action="store_true", help="Also facelora's bf16-autocast step (default with --compare-reference).")
    ap.add_argument("--steps", type=int, default=None, help="Timed steps per subprocess (after the warm-up).")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=None, help="Subprocesses per implementation (interleaved).")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2).")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--optimizer", default="AdamW", help="facelora's optimizer_type (e.g. AdamW8bit); the reference keeps AdamW.")
    ap.add_argument("--unet-only", action="store_true", help="network_train_unet_only (the text encoder is not trained).")
    ap.add_argument("--torch-compile", action="store_true", help="facelora with torch_compile.")
    ap.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                    help="Force channels_last on (default: facelora's own choice).")
    ap.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    ap.add_argument("--without", choices=WITHOUT, help="Also facelora without this speed-up (interleaved), and the ratio.")
    ap.add_argument("--network", choices=NETWORKS, default="lora", help=argparse.SUPPRESS)
    ap.add_argument("--networks", nargs="+", choices=[n for n in NETWORKS if n != "lora"],
                    help="Also these network types (facelora, interleaved with plain LoRA), and the ratios.")
    ap.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compare-reference", action="store_true", help="facelora / reference, interleaved.")
    ap.add_argument("--no-flops", action="store_true", help="Skip the FLOP count (one extra step per configuration).")
    ap.add_argument("--quick", action="store_true", help="256 px, 3 steps, one round: while developing.")
    ap.add_argument("--tiny", action="store_true", help="The tiny model at 64 px, 1 step, one round: the script's test.")
    ap.add_argument("--max-rss-gib", type=float, default=16.0,
                    help="Stop a variant whose memory passes this and report the figure (default 16).")
    return ap


def main(argv: list[str] | None = None) -> dict | None:
    a = arguments().parse_args(argv)

    if a.worker:
        a.impl = a.worker
        a.steps = a.steps or 5
        print(json.dumps(worker(a)))
        return None

    if a.tiny:
        a.sizes, a.steps, a.rounds, a.no_flops = a.sizes or [64], a.steps or 1, a.rounds or 1, True
        a.no_checkpointing = not a.checkpointing
    if a.quick:
        a.sizes, a.steps, a.rounds = a.sizes or [256], a.steps or 3, a.rounds or 1
    sizes = a.sizes or ([512] if a.compare_reference else [256, 512])
    if a.checkpointing or a.no_checkpointing:
        checkpointing = [True] * a.checkpointing + [False] * a.no_checkpointing
    else:
        checkpointing = [False] if a.compare_reference else [False, True]
    # at least 5 timed steps per implementation
    a.rounds = a.rounds or (2 if a.compare_reference else 1)
    a.steps = a.steps or max(3, -(-5 // a.rounds))
    with_bf16 = (a.bf16 or a.compare_reference) and a.precision == "fp32" and a.device == "cpu"

    started = time.time()
    load_before = list(os.getloadavg())
    results = []
    for size in sizes:
        for ckpt in checkpointing:
            impls = [("facelora", a.precision, None, "lora")]
            if a.compare_reference:
                impls.append(("reference", a.precision, None, "lora"))
            if with_bf16:
                impls.append(("facelora", "bf16", None, "lora"))
            if a.without:
                impls.append(("facelora", a.precision, a.without, "lora"))
            impls += [("facelora", a.precision, None, n) for n in a.networks or []]
            runs: dict[tuple[str, str, str | None, str], list[dict]] = {i: [] for i in impls}
            for r in range(a.rounds):  # A B (C) A B (C) ...
                for key in impls:
                    impl, prec, without, net = key
                    runs[key].append(run_worker(impl, size, ckpt, prec, a, (r == 0 and not a.no_flops), without, net))
                    print(f"# {impl}{' without ' + without if without else ''} {net} {prec} {size}px ckpt={ckpt} "
                          f"round {r + 1}: {runs[key][-1]['step_s']}", file=sys.stderr, flush=True)
            entry = {"size": size, "gradient_checkpointing": ckpt}
            for (impl, prec, without, net), rs in runs.items():
                name = f"{impl}_{prec}" + (f"_without_{without}" if without else "") + ("" if net == "lora" else f"_{net}")
                entry[name] = summarise(rs, a.device, prec)
            facelora = entry[f"facelora_{a.precision}"]
            for net in a.networks or []:  # each type over plain LoRA
                entry.update(network_ratios(entry[f"facelora_{a.precision}_{net}"], facelora, net))
            if a.compare_reference:
                entry.update(ratios(facelora, entry[f"reference_{a.precision}"], "reference"))
            if a.without:
                entry.update(ratios(facelora, entry[f"facelora_{a.precision}_without_{a.without}"], f"without_{a.without}"))
            if with_bf16:
                entry["ratio_time_bf16_over_fp32_facelora"] = round(
                    entry["facelora_bf16"]["median_step_s"] / entry[f"facelora_{a.precision}"]["median_step_s"], 3)
            results.append(entry)

    m = machine(a.threads)
    m["load_average_before"], m["load_average_after"] = load_before, m.pop("load_average")
    report = {
        "command": "python " + " ".join([f"bench/{Path(sys.argv[0]).name}"] + sys.argv[1:]),
        "machine": m,
        "settings": {"model": "tiny" if a.tiny else "random SD1.5", "rank": TINY_RANK if a.tiny else RANK,
                     "alpha": TINY_RANK / 2 if a.tiny else ALPHA, "batch": 1, "latents": "cached", "optimizer": a.optimizer,
                     "text_encoder_trained": not a.unet_only, "steps_per_round": a.steps, "rounds": a.rounds,
                     "warmup_steps": a.warmup, "torch_compile": a.torch_compile, "without": a.without,
                     "networks": {n: NETWORKS[n] for n in ["lora", *(a.networks or [])]}},
        "results": results,
        "wall_s": round(time.time() - started, 1),
    }
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
