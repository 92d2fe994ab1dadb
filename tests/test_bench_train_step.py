"""bench/train_step.py in its test mode (--tiny: the tiny model at 64 px, one step per variant):
plain LoRA, LyCORIS LoCon, DoRA and masked loss each train()'s real step in their own
subprocess, and the report has each one's figures and its ratios to plain LoRA."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def train_step():
    sys.path.insert(0, str(BENCH))
    import train_step

    return train_step


def test_the_variants_run_interleaved_with_their_ratios_to_plain_lora(train_step):
    report = train_step.main(["--tiny", "--threads", "1", "--networks", "locon", "dora", "masked"])
    assert report["settings"]["model"] == "tiny"
    networks = report["settings"]["networks"]
    assert networks["locon"][:2] == ("lycoris.kohya", ["algo=locon", "conv_dim=32", "conv_alpha=16"])
    assert networks["dora"][1] == ["algo=lora", "dora_wd=True"] and networks["masked"][2] is True
    [entry] = report["results"]
    assert entry["size"] == 64 and entry["gradient_checkpointing"] is False
    for name in ("facelora_fp32", "facelora_fp32_locon", "facelora_fp32_dora", "facelora_fp32_masked"):
        assert entry[name]["median_step_s"] > 0 and entry[name]["peak_rss_gib"] > 0.1, name
        assert len(entry[name]["step_s"]) == 1
    for net in ("locon", "dora", "masked"):
        lora, other = entry["facelora_fp32"], entry[f"facelora_fp32_{net}"]
        assert entry[f"ratio_time_{net}_over_lora"] == round(other["median_step_s"] / lora["median_step_s"], 3)
        assert entry[f"ratio_peak_rss_{net}_over_lora"] == round(other["peak_rss_gib"] / lora["peak_rss_gib"], 3)


def test_a_worker_above_the_memory_limit_is_stopped_with_its_figure():
    out = subprocess.run([sys.executable, str(BENCH / "train_step.py"), "--worker", "facelora", "--tiny", "--size", "64",
                          "--steps", "1", "--threads", "1", "--max-rss-gib", "0.05"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    figure = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])
    assert figure["limit_gib"] == 0.05 and figure["stopped_at_rss_gib"] > 0.05


def test_the_masked_variants_mask_is_a_head_with_the_rest_weighted_less(train_step):
    import facelora_step

    mask = facelora_step.head_mask(64)
    assert mask.shape == (1, 64, 64)
    assert mask[0, 32, 32] == 1 and mask[0, 0, 0] == 0.25 and mask[0, 32, 2] == 0.25
    assert torch.unique(mask).tolist() == [0.25, 1.0]
