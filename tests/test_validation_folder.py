"""A named folder of held-out photos (validation_data_dir) for the validation loss, beside or
instead of validation_split, in Kohya's form: a dataset of its own with validation_split 1.0 in
the dataset config the export writes (sd-scripts docs/validation.md; config_util.py reads
validation_split per dataset, at commit 48d368fa557731ad0488c07304dfeba8c07910eb)."""

from __future__ import annotations

import io
import tomllib

import torch
from PIL import Image
from rich.console import Console

from conftest import tiny_training_project
from facelora.config import apply, check, export_kohya
from facelora.config.kohya_dataset import dataset_config_toml
from facelora.dataset import scan_for
from facelora.events import Validation, read_events
from facelora.lora_file import read_metadata
from facelora.plan import plan_for
from facelora.tables import plan_table
from facelora.train.data import TrainData
from facelora.train.loop import train
from facelora.train.validation import due

BASE = dict(pretrained_model_name_or_path="tiny", resolution="64", max_train_epochs=2, network_dim=4, network_alpha=2,
            optimizer_type="AdamW", lr_scheduler="constant", unet_lr=1e-3, text_encoder_lr=1e-4, mixed_precision="no")
KOHYA_DB_DATASET_KEYS = {"batch_size", "bucket_no_upscale", "bucket_reso_steps", "enable_bucket", "max_bucket_reso",
                         "min_bucket_reso", "validation_seed", "validation_split", "resolution", "network_multiplier",
                         "resize_interpolation", "subsets"}
KOHYA_DB_SUBSET_KEYS = {"image_dir", "is_reg", "alpha_mask", "num_repeats", "class_tokens", "caption_extension",
                        "cache_info", "shuffle_caption", "keep_tokens"}


def project_with_held_folder(root, images=3, held=2, **updates):
    project = tiny_training_project(root, images=images, repeats=2)
    folder = project.root / "validation" / "1_ohwx woman"
    folder.mkdir(parents=True)
    for i in range(held):
        Image.new("RGB", (64, 64), (60 + 50 * i, 120, 90)).save(folder / f"v{i}.png")
        (folder / f"v{i}.txt").write_text(f"ohwx woman, held out {i}")
    settings = project.settings()
    settings.train = apply(settings.train, {**BASE, "validation_data_dir": "validation", **updates})
    project.save_settings(settings)
    return project, project.train_config()


def test_the_folders_photos_validate_and_the_plan_names_them(tmp_path):
    project, cfg = project_with_held_folder(tmp_path / "p")
    dataset = scan_for(cfg)
    assert dataset.num_images == 3  # the training photos are all trained on
    assert [p.name for s in dataset.validation for p in s.images] == ["v0.png", "v1.png"]
    assert all(s.repeats == 1 for s in dataset.validation)  # seen once per validation, as Kohya's
    plan = plan_for(cfg, dataset)
    assert plan.validation_images == 2 and plan.validation_photos == ["1_ohwx woman/v0.png", "1_ohwx woman/v1.png"]
    out = io.StringIO()
    Console(file=out, width=200).print(plan_table(plan))
    row = next(line for line in out.getvalue().splitlines() if "held out for validation" in line)
    assert "2: 1_ohwx woman/v0.png, 1_ohwx woman/v1.png" in row
    assert due(cfg, epoch=1) and not due(cfg, step=1)
    check(apply(cfg, {"validate_every_n_epochs": 2}), cuda=False)  # a folder is enough for the options


def test_validation_split_and_the_folder_together(tmp_path):
    project, cfg = project_with_held_folder(tmp_path / "p", images=4, validation_split=0.25)
    dataset = scan_for(cfg)
    assert dataset.num_images == 3 and sum(len(s.images) for s in dataset.validation) == 3


def test_a_run_validates_on_the_folder_the_same_twice(tmp_path):
    losses = []
    for name in ("a", "b"):
        project, cfg = project_with_held_folder(tmp_path / name)
        result = run(project, cfg)
        vals = [e for e in read_events(project.events_path) if isinstance(e, Validation)]
        assert [(v.epoch, v.images) for v in vals] == [(1, 2), (2, 2)]
        assert all(v.loss == v.loss and v.loss > 0 for v in vals)
        assert read_metadata(result.final)["ss_num_validation_images"] == "2"
        losses.append([v.loss for v in vals])
    assert losses[0] == losses[1] and losses[0][0] != losses[0][1]  # same seed: the same; the weights moved


def test_the_folders_photos_are_unmasked_with_conditioning_masks_as_in_kohya(tmp_path):
    project, cfg = project_with_held_folder(tmp_path / "p", images=2)
    folder = project.root / "mask" / project.concept_dir()[0].name
    folder.mkdir(parents=True)
    for i in range(2):
        Image.new("L", (64, 64), 30).save(folder / f"{i}.png")
    cfg = apply(cfg, {"masked_loss": True, "conditioning_data_dir": str(project.root / "mask")})
    held = TrainData(scan_for(cfg).held_out(), cfg)
    assert held.masks is not None and all(torch.all(m == 1.0) for m in held.masks)
    data = TrainData(scan_for(cfg), cfg)
    assert all(torch.all(m == 30 / 255) for m in data.masks)


def test_the_kohya_export_holds_the_folder_out_as_a_dataset_with_validation_split_one(tmp_path):
    project, cfg = project_with_held_folder(tmp_path / "p", validation_split=0.25, output_name="ohwx")
    data = tomllib.loads(dataset_config_toml(cfg, project.root))
    train_set, held = data["datasets"]
    assert held == {"validation_split": 1.0, "subsets": [{
        "image_dir": str((project.root / "validation" / "1_ohwx woman").resolve()), "num_repeats": 1,
        "class_tokens": "ohwx woman"}]}
    assert train_set["subsets"] == [{"image_dir": str(project.concept_dir()[0].resolve()), "num_repeats": 2,
                                     "class_tokens": "ohwx woman"}]
    assert all(set(d) <= KOHYA_DB_DATASET_KEYS for d in data["datasets"])
    assert all(set(s) <= KOHYA_DB_SUBSET_KEYS for d in data["datasets"] for s in d["subsets"])
    training = {k: v for t in tomllib.loads(export_kohya(cfg, project.root)).values() for k, v in t.items()}
    assert training["dataset_config"] == str((project.root / "kohya-dataset.toml").resolve())
    assert training["validation_split"] == 0.25  # the training dataset's own split: sd-scripts' fallback
    from test_objective import sd_scripts_arguments

    assert set(training) <= sd_scripts_arguments()


def test_config_export_writes_the_dataset_config_beside_the_toml(tmp_path):
    from typer.testing import CliRunner

    from facelora.cli import app

    project, _ = project_with_held_folder(tmp_path / "p", output_name="ohwx")
    out = tmp_path / "kohya.toml"
    r = CliRunner().invoke(app, ["config", "export", str(project.root), str(out)])
    assert r.exit_code == 0, r.output
    dataset = tmp_path / "kohya-dataset.toml"
    assert tomllib.loads(out.read_text())["dataset_arguments"]["dataset_config"] == str(dataset.resolve())
    assert tomllib.loads(dataset.read_text())["datasets"][1]["validation_split"] == 1.0


def run(project, cfg):
    return train(project, cfg, console=Console(file=io.StringIO(), width=200))




def test_the_exported_pair_imports_back(tmp_path):
    from facelora.config import import_kohya

    project, cfg = project_with_held_folder(tmp_path / "p", validation_split=0.25, output_name="ohwx")
    dataset = tmp_path / "k-dataset.toml"
    dataset.write_text(dataset_config_toml(cfg, project.root))
    out = tmp_path / "k.toml"
    out.write_text(export_kohya(cfg, project.root, dataset))
    back, notes = import_kohya(out.read_text(), source=out)
    assert back.validation_split == 0.25 and back.max_train_epochs == 2  # the held-out dataset's 1.0 is not the split
    assert any("holds out" in n and "validation_data_dir" in n for n in notes)
