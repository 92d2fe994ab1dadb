"""The X/Y/Z grid on the tiny model (its images are noise: these tests check the machinery, never
what the pictures show): layout and labels, cells with A1111's parameters text, grid.json, weight
0 = the base model, the text encoder's LoRA scaled with the weight, Prompt S/R."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from facelora.config import TrainConfig
from facelora.evaluate import axes, infotext, loras
from facelora.evaluate.grid import GridError, GridOptions, LoraSlot, make_grid, plan_grid, text_embeds
from facelora.lora_file import addnet_hash, kohya_metadata, read_lora, save_lora
from facelora.model.sampling import make_pipeline, render
from facelora.networks.lora import LoRANetwork
from facelora.model.tiny import build_tiny
from facelora.filenames import lora_filename
from facelora.project import init_project

FILES = [lora_filename("ohwx", 1), lora_filename("ohwx", 2), lora_filename("ohwx")]
FAST = dict(steps=2, size="64x64")


def save_random_loras(project, model, names=FILES):
    """LoRA files with random non-zero up weights (a fresh LoRA changes nothing: up starts at 0)."""
    for i, name in enumerate(names):
        net = LoRANetwork(model.unet, model.text_encoder, rank=4, alpha=2)
        g = torch.Generator().manual_seed(i)
        with torch.no_grad():
            for m in net.loras.values():
                m.lora_up.weight.copy_(torch.randn(m.lora_up.weight.shape, generator=g) * 0.5)
        meta = kohya_metadata(network_dim=4, network_alpha=2, output_name="ohwx", epoch=i + 1, steps=10 * (i + 1))
        save_lora(project.models_dir / name, net.kohya_state_dict(), meta)


@pytest.fixture(scope="module")
def tiny():
    model = build_tiny()
    return model, make_pipeline(model)


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny):
    p = init_project(tmp_path_factory.mktemp("grid") / "my project 项目", "ohwx", "woman",
                     train=TrainConfig(pretrained_model_name_or_path="tiny", resolution="64"))
    save_random_loras(p, tiny[0])
    return p


@pytest.fixture(scope="module")
def grid3(project, tiny):
    return make_grid(project, GridOptions(weights="0,0.5,1", **FAST), model_and_pipe=tiny)


def test_files_come_in_training_order(project):
    assert [lf.path.name for lf in loras.list_loras(project.models_dir, "ohwx")] == FILES
    assert [lf.name for lf in loras.pick("2,ohwx", project.models_dir, "ohwx")] == ["ohwx-000002", "ohwx"]
    with pytest.raises(loras.LoraFileError, match="ohwx-000001, ohwx-000002, ohwx"):
        loras.pick("ohwx-000007", project.models_dir, "ohwx")


def test_three_files_by_three_weights(project, grid3):
    data = json.loads((project.eval_dir / "grid.json").read_text(encoding="utf-8"))
    lay = grid3.layout
    with Image.open(project.eval_dir / "grid.png") as im:
        sheet = im.convert("RGB")
    # labels take a band on the left and on top; the 3 x 3 cells of 64 px fill the rest
    assert lay.left > 0 and lay.top > 0
    assert sheet.size == (lay.left + 3 * 64, lay.title_h + lay.top + 3 * 64)
    assert np.asarray(sheet.crop((0, lay.title_h + lay.top, lay.left, sheet.height)).convert("L")).min() < 100
    assert np.asarray(sheet.crop((lay.left, lay.title_h, sheet.width, lay.title_h + lay.top)).convert("L")).min() < 100

    assert len(data["cells"]) == 9 and data["tiny_test_model"] is True
    assert data["x"]["labels"] == ["ohwx-000001", "ohwx-000002", "ohwx"]
    assert data["y"]["labels"] == ["weight 0", "weight 0.5", "weight 1"]
    hashes = {name: addnet_hash(project.models_dir / name)[:12] for name in FILES}
    assert hashes[FILES[0]] == read_lora(project.models_dir / FILES[0])[1]["sshs_model_hash"][:12]
    for cell in data["cells"]:
        path = project.root / cell["path"]
        assert path.parent == project.eval_dir / "cells"
        assert cell["file"] == FILES[cell["x"]] and cell["weight"] == [0, 0.5, 1][cell["y"]] and cell["seed"] == 1234
        with Image.open(path) as im:
            params = im.info["parameters"]
            x0, y0 = lay.origin(cell["x"], cell["y"])
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(sheet.crop((x0, y0, x0 + 64, y0 + 64))))
        info = infotext.parse_infotext(params)
        tag = f"<lora:{cell['lora']}:{infotext.fmt_number(cell['weight'])}>"
        assert info.prompt == cell["prompt"] and info.prompt.endswith(tag) and info.prompt.startswith("ohwx, woman")
        assert info.negative == cell["negative"]
        assert info.params["Steps"] == "2" and info.params["Sampler"] == "Euler a" and info.params["Seed"] == "1234"
        assert info.params["Size"] == "64x64" and info.params["CFG scale"] == "7"
        assert info.lora_hashes() == {cell["lora"]: hashes[cell["file"]]}
    assert len(list((project.eval_dir / "cells").glob("*.png"))) == 9


def test_weight_zero_is_the_base_model_and_one_is_not(project, grid3, tiny):
    model, _ = tiny
    base_pipe = make_pipeline(model)  # never had a LoRA: make_grid unloads its adapter at the end
    c = grid3.cells[0]
    base = render(base_pipe, text_embeds(model, c.prompt, 1, "cpu"), text_embeds(model, c.negative, 1, "cpu"),
                  c.seed, c.steps, c.cfg, 64, 64)
    cell = {(k.x, k.y): np.asarray(Image.open(k.path).convert("RGB"), dtype=np.int16) for k in grid3.cells}
    base = np.asarray(base, dtype=np.int16)
    for x in range(3):
        assert np.array_equal(cell[(x, 0)], base)  # weight 0
        assert np.abs(cell[(x, 2)] - base).mean() > 2  # weight 1
    assert np.abs(cell[(0, 2)] - cell[(1, 2)]).mean() > 2  # another file, another image


def test_the_text_encoder_lora_scales_with_the_weight(project, tiny):
    model, pipe = tiny
    slot = LoraSlot(pipe)
    base = text_embeds(model, "ohwx woman", 1, "cpu")
    slot.use(project.models_dir / FILES[1])
    try:
        assert set(pipe.get_list_adapters()) == {"unet", "text_encoder"}
        diffs = []
        for w in (0.0, 0.5, 1.0):
            slot.weigh(infotext.LoraTag("x", w))
            diffs.append(float((text_embeds(model, "ohwx woman", 1, "cpu") - base).abs().max()))
    finally:
        slot.use(None)
    assert diffs[0] == 0 and 0 < diffs[1] < diffs[2]
    assert torch.equal(text_embeds(model, "ohwx woman", 1, "cpu"), base)  # unloaded: the base again


def test_prompt_sr_must_find_its_first_value(project):
    with pytest.raises(axes.AxisError, match="'000004' is not in the prompt"):
        plan_grid(project, GridOptions(xsr="000004,000006,000008", **FAST))
    with pytest.raises(GridError, match="either as --checkpoints or as --xsr"):
        plan_grid(project, GridOptions(checkpoints="1", xsr="a,b", prompt="a", **FAST))


def test_prompt_sr_axes_as_in_the_tutorial(project):
    """X and Y both as Prompt S/R over one <lora:...> tag; the final file answers to its epoch."""
    plan = plan_grid(project, GridOptions(prompt="photo of ohwx <lora:ohwx-000001:0.6>", xsr="000001,000002,000003",
                                          ysr="0.6,0.9", **FAST))
    assert [(c.file.name, c.weight) for c in plan.cells] == [
        (FILES[0], 0.6), (FILES[1], 0.6), (FILES[2], 0.6), (FILES[0], 0.9), (FILES[1], 0.9), (FILES[2], 0.9)]
    assert plan.cells[4].prompt == "photo of ohwx <lora:ohwx-000002:0.9>"
    # --weights over an S/R X axis set the tag's weight
    plan = plan_grid(project, GridOptions(prompt="ohwx <lora:ohwx-000001:1>", xsr="000001,000002", weights="0.2-0.4 (+0.2)", **FAST))
    assert [(c.x, c.y, c.weight) for c in plan.cells] == [(0, 0, 0.2), (1, 0, 0.2), (0, 1, 0.4), (1, 1, 0.4)]


def test_one_seed_for_the_grid_and_prompt_sr_as_z(project):
    plan = plan_grid(project, GridOptions(weights="0.5,1", seeds="-1", z="prompts", z_values="smiling,serious",
                                          prompt="ohwx, smiling", **FAST))
    seeds = {c.seed for c in plan.cells}
    assert len(seeds) == 1 and seeds != {-1}  # -1 = one random seed, fixed for every cell
    assert {(c.z, c.prompt) for c in plan.cells if c.x == 0 and c.y == 0} == {
        (0, "ohwx, smiling <lora:ohwx-000001:0.5>"), (1, "ohwx, serious <lora:ohwx-000001:0.5>")}
    assert len(plan.cells) == 3 * 2 * 2 and plan.z_labels == ["smiling", "serious"]


def test_z_axis_and_several_seeds(project, tiny):
    result = make_grid(project, GridOptions(checkpoints="1,ohwx", weights="1", seeds="1,2", z="cfg",
                                            z_values="1,7", **FAST), model_and_pipe=tiny)
    lay = result.layout
    assert (lay.cols, lay.rows, lay.subgrids, lay.per_cell) == (2, 1, 2, 2) and len(result.cells) == 8
    with Image.open(result.grid) as im:
        assert im.size == (2 * (lay.left + 2 * 2 * 64 + lay.spacing) + lay.gap, lay.title_h + lay.z_title_h + lay.top + 64)
    cfgs = {(c.z, c.cfg) for c in result.cells}
    assert cfgs == {(0, 1.0), (1, 7.0)} and {c.seed for c in result.cells} == {1, 2}
    data = json.loads(result.json.read_text(encoding="utf-8"))
    assert data["z"]["labels"] == ["CFG scale 1", "CFG scale 7"] and {c["z_value"] for c in data["cells"]} == {"1.0", "7.0"}
    # the earlier grid's nine cells were removed, not mixed in
    assert len(list((project.eval_dir / "cells").glob("*.png"))) == 8
    with pytest.raises(GridError, match="not both"):
        plan_grid(project, GridOptions(seeds="1", z="seeds", z_values="1,2", **FAST))


def test_clear_errors_before_any_work(project):
    with pytest.raises(Exception, match="Unknown sampler 'Heun'"):
        plan_grid(project, GridOptions(sampler="Heun", **FAST))
    with pytest.raises(GridError, match="multiples of 8"):
        plan_grid(project, GridOptions(size="100x100"))
    with pytest.raises(GridError, match="Unknown Z axis"):
        plan_grid(project, GridOptions(z="hires", z_values="1", **FAST))


def test_samplers_a1111_names(project, tiny):
    for sampler in ("DPM++ 2M Karras", "DDIM"):
        result = make_grid(project, GridOptions(checkpoints="ohwx", weights="1", sampler=sampler, **FAST), model_and_pipe=tiny)
        with Image.open(result.cells[0].path) as im:
            assert f"Sampler: {sampler}," in im.info["parameters"]


def test_install_writes_the_weight_and_keeps_the_hashes(project, tmp_path):
    src = project.models_dir / FILES[1]
    dest = loras.install(src, tmp_path, 0.8, trigger="ohwx")
    tensors, meta = read_lora(dest)
    src_tensors, src_meta = read_lora(src)
    assert meta["modelspec.usage_hint"].startswith("Use at weight 0.8: <lora:ohwx-000002:0.8>")
    assert meta["sshs_model_hash"] == src_meta["sshs_model_hash"] == addnet_hash(dest)
    assert meta["sshs_legacy_hash"] == src_meta["sshs_legacy_hash"]
    assert all(torch.equal(tensors[k], src_tensors[k]) for k in src_tensors)
    assert json.loads(dest.with_suffix(".json").read_text())["preferred weight"] == 0.8
    loras.install(src, tmp_path, 0.6)  # the same weights again: fine
    (tmp_path / FILES[0]).write_bytes(dest.read_bytes())  # that name, other weights: the user's file
    with pytest.raises(loras.LoraFileError, match="--overwrite"):
        loras.install(project.models_dir / FILES[0], tmp_path, 1.0)
    replaced = loras.install(project.models_dir / FILES[0], tmp_path, 1.0, overwrite=True)
    assert addnet_hash(replaced) == addnet_hash(project.models_dir / FILES[0])


def test_a_file_diffusers_cannot_fully_apply_is_refused(project, tiny, tmp_path):
    """diffusers only logs a warning for LoRA keys that fit no module; the grid counts the
    modules it applied and refuses a file it could not apply in full."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(project.models_dir / FILES[0])
    bad = tmp_path / "bad.safetensors"
    save_file({k.replace("attn1_to_q", "attn1_to_zz"): v for k, v in tensors.items()}, bad)
    slot = LoraSlot(tiny[1])
    with pytest.raises(GridError, match=r"applied only \d+ of the \d+ LoRA modules in bad.safetensors"):
        slot.use(bad)
    assert not tiny[1].get_list_adapters()  # nothing left behind
    slot.use(project.models_dir / FILES[0])  # a good file: every module applied
    slot.use(None)
