"""The training side's errors (a training folder, a base model, sample prompts, a LoRA file) show
in Chinese in zh-CN with their values, while their English text stays what it was."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio")

from facelora.gui import i18n  # noqa: E402


def test_a_missing_training_folder_reads_in_chinese_with_its_path(tmp_path: Path):
    from facelora.dataset import DatasetError, scan

    with pytest.raises(DatasetError) as missing:
        scan(tmp_path / "nope")
    assert str(missing.value) == f"Training folder '{tmp_path / 'nope'}' does not exist."
    assert i18n.error_message(missing.value, "zh-CN") == f"训练文件夹 '{tmp_path / 'nope'}' 不存在。"


def test_a_base_model_message_translates_its_fixed_words_too(tmp_path: Path):
    from facelora.model.base import load_base
    from facelora.model.family import EXPECTED
    from facelora.model.sdmodel import BaseModelError

    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(BaseModelError) as odd:
        load_base(str(tmp_path / "notes.txt"))
    assert str(odd.value) == f"'notes.txt' is neither a .safetensors checkpoint nor a diffusers folder. {EXPECTED}"
    chinese = i18n.error_message(odd.value, "zh-CN")
    assert chinese.startswith("'notes.txt' 既不是 .safetensors 检查点") and "需要一个 Stable Diffusion 1.5 底模" in chinese
    assert "facelora needs" not in chinese  # the EXPECTED value is a fixed text with its own translation


def test_sample_prompt_and_lora_file_errors_read_in_chinese(tmp_path: Path):
    from facelora.lora_file import LoRAFileError, check_keys
    from facelora.train.samples import PromptsError, parse_prompt

    with pytest.raises(PromptsError) as bad:
        parse_prompt("a photo of ohwx --q 3")
    assert str(bad.value) == "Unknown option --q in the sample prompt 'a photo of ohwx --q 3'; use --n --w --h --d --l --s."
    assert i18n.error_message(bad.value, "zh-CN") == \
        "示例提示词 'a photo of ohwx --q 3' 中有未知选项 --q；请使用 --n --w --h --d --l --s。"
    with pytest.raises(LoRAFileError) as sdxl:
        check_keys(["lora_te1_text_model.weight"], "x.safetensors")
    assert str(sdxl.value) == "x.safetensors is an SDXL LoRA (lora_te1_/lora_te2_ names); facelora's LoRAs are SD1.5."
    assert i18n.error_message(sdxl.value, "zh-CN").startswith("x.safetensors 是 SDXL LoRA")
