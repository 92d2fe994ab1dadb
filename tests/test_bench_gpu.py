"""bench/gpu.py, the device benchmark, in its CPU test mode: every configuration runs facelora's
(or the reference's) real step on the tiny model, and the JSON and table have what a GPU run
will fill in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def gpu_bench():
    sys.path.insert(0, str(BENCH))
    import gpu

    return gpu


def test_dry_run_on_the_cpu_writes_every_configuration(gpu_bench, tmp_path):
    report = gpu_bench.main(["--device", "cpu", "--dry-run", "--budget-s", "100000", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "gpu.json").read_text())
    assert saved["results"] == report["results"] and saved["device"] == "cpu" and saved["tiny"] is True
    assert saved["machine"]["torch"] and saved["machine"]["dense_bf16_peak_tflops"] == "unknown"
    rows = saved["results"]
    assert len(rows) == len(gpu_bench.CASES)
    assert {r["impl"] for r in rows} == {"facelora", "reference"}
    assert {(r["config"]["mixed_precision"], r["config"]["optimizer_type"], r["config"]["gradient_checkpointing"])
            for r in rows} >= {("fp16", "AdamW", False), ("bf16", "AdamW", False), ("bf16", "AdamW8bit", False),
                               ("bf16", "AdamW", True)}
    for r in rows:
        assert "skipped" not in r and "oom" not in r and "error" not in r, r
        assert r["it_per_s"] > 0 and r["images_per_s"] > 0 and r["median_step_s"] > 0
        assert r["peak_memory_bytes"] > 0 and r["modelled_bytes"] > 0 and r["flop_per_step"] > 0
    # the work grows with the batch: the FLOP count is of the real step
    by = {(r["impl"], r["config"]["mixed_precision"], r["config"]["train_batch_size"], r["config"]["optimizer_type"],
           r["config"]["gradient_checkpointing"], r["label"]): r for r in rows}
    b1, b4 = by["facelora", "bf16", 1, "AdamW", False, ""], by["facelora", "bf16", 4, "AdamW", False, ""]
    assert b4["flop_per_step"] > 2 * b1["flop_per_step"]
    assert saved["facelora_over_reference"]["bf16 batch 1"] > 0
    # the CPU run takes CUDA's paths: frozen weights in the autocast dtype, fp16's GradScaler,
    # full_fp16's scaler for fp16 gradients, the LoRA in 16 bits only with full_*
    for r in rows:
        if r["impl"] != "facelora":
            continue
        mp, layout = r["config"]["mixed_precision"], r["layout"]
        half = {"fp16": "float16", "bf16": "bfloat16"}[mp]
        full = r["config"][f"full_{mp}"]
        assert layout["frozen"] == half and layout["lora"] == (half if full else "float32"), r
        assert layout["scaler"] == ({"fp16": "HalfGradScaler" if full else "GradScaler", "bf16": None}[mp]), r
    assert {r["label"] for r in rows} >= {"full_bf16", "full_fp16"}
    table = (tmp_path / "gpu.md").read_text()
    assert table.count("\n| facelora") + table.count("\n| reference") == len(rows)


def test_dense_bf16_peaks_of_known_cards(gpu_bench):
    from machine import dense_bf16_peak

    assert dense_bf16_peak("NVIDIA H200") == dense_bf16_peak("NVIDIA H100 80GB HBM3") == 989e12
    assert dense_bf16_peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert dense_bf16_peak("NVIDIA GeForce RTX 4090") == 165e12
    assert dense_bf16_peak("NVIDIA GeForce RTX 3090") == 71e12
    assert dense_bf16_peak("Tesla T4") is None and dense_bf16_peak(None) is None


def test_no_cuda_is_a_clear_message(gpu_bench, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA GPU"):
        gpu_bench.main(["--device", "cuda", "--out", str(tmp_path)])


def test_gpu_sh_runs_bench_gpu_py_from_anywhere(tmp_path):
    """bench/gpu.sh, the one command for a GPU machine: it finds the repository, sets PYTHONPATH and
    passes its arguments on (here --help, which names the CPU test mode)."""
    import subprocess

    done = subprocess.run(["bash", str(BENCH / "gpu.sh"), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "--dry-run" in done.stdout and "--budget-s" in done.stdout
