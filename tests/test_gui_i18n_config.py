"""config/'s, networks/' and kohya_layout.py's errors show in the GUI's Chinese with their values,
and in English exactly as the CLI prints them (tests/test_gui_i18n.py checks every raise site has
a zh-CN template; these check a few are filled as a person reads them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from facelora.config import import_kohya
from facelora.errors import ConfigError, FaceloraError
from facelora.gui import i18n
from facelora.kohya_layout import adopt_kohya_layout
from facelora.networks.args import check_lycoris_args
from facelora.project import ProjectError


def _shown(e: BaseException) -> tuple[str, str]:
    return i18n.error_message(e, "en"), i18n.error_message(e, "zh-CN")


def test_a_kohya_config_refused_shows_its_reason_in_chinese():
    with pytest.raises(ConfigError) as refused:
        import_kohya('{"sdxl": true, "LoRA_type": "Standard"}')
    english, chinese = _shown(refused.value)
    assert english == str(refused.value) == "This config trains with sdxl=true; facelora trains SD1.5 LoRA only."
    assert chinese == "此配置以 sdxl=true 训练；facelora 只训练 SD1.5 LoRA。"
    with pytest.raises(ConfigError) as broken:
        import_kohya("{not json")
    assert i18n.error_message(broken.value, "zh-CN").startswith("不是有效的 kohya_ss JSON 配置：")
    assert str(broken.value).startswith("Not a valid kohya_ss JSON config: ")


def test_a_network_arg_refused_names_it_in_chinese():
    with pytest.raises(FaceloraError) as refused:
        check_lycoris_args({"algo": "lokr", "dropout": 1.5})
    english, chinese = _shown(refused.value)
    assert english == "network_args dropout=1.5: a probability, from 0 up to 1."
    assert chinese == "network_args dropout=1.5：应为概率，从 0 到 1（不含 1）。"
    with pytest.raises(FaceloraError) as unknown:
        check_lycoris_args({"algo": "lokr", "colour": "red"})
    assert str(unknown.value).startswith("network_args ['colour']: lycoris.kohya in facelora takes ")
    assert i18n.error_message(unknown.value, "zh-CN").startswith("network_args ['colour']：facelora 的 lycoris.kohya 接受 ")


def test_a_kohya_layout_with_two_people_is_refused_in_chinese(tmp_path: Path):
    for name in ("10_ohwx woman", "10_sks man"):
        (tmp_path / "image" / name).mkdir(parents=True)
    with pytest.raises(ProjectError) as refused:
        adopt_kohya_layout(tmp_path)
    english, chinese = _shown(refused.value)
    assert "holds 2 '<repeats>_<name>' folders (10_ohwx woman, 10_sks man); facelora trains one person" in english
    assert "中有 2 个 '<repeats>_<name>' 文件夹（10_ohwx woman, 10_sks man）" in chinese
    assert str(tmp_path / "image") in chinese and "facelora trains" not in chinese


def test_a_lora_file_of_another_shape_says_which_rank_in_chinese():
    import torch

    from facelora.lora_file import LoRAFileError
    from facelora.networks.weights import check_state_dict

    own = {"lora_unet_b.lora_down.weight": torch.zeros(4, 8, 3, 3)}
    with pytest.raises(LoRAFileError) as refused:
        check_state_dict(own, {"lora_unet_b.lora_down.weight": torch.zeros(8, 8, 3, 3)})
    english, chinese = _shown(refused.value)
    assert english == ("lora_unet_b.lora_down.weight has shape (8, 8, 3, 3), the network expects (4, 8, 3, 3). It has "
                       "rank 8; set network_dim to 8 (as conv_dim: it is a 3x3 convolution).")
    assert chinese == ("lora_unet_b.lora_down.weight 的形状为 (8, 8, 3, 3)，网络需要 (4, 8, 3, 3)。它的秩为 8；"
                       "请把 network_dim 设为 8（作为 conv_dim：它是 3x3 卷积）。")
    with pytest.raises(LoRAFileError) as other:
        check_state_dict(own, {"lora_te_x.alpha": torch.tensor(1.0)})
    assert str(other.value).startswith("The LoRA does not match the network: it lacks 1 tensors of 1 modules this "
                                       "network has (e.g. lora_unet_b.lora_down.weight); it has 1 tensors of 1 modules")
    assert i18n.error_message(other.value, "zh-CN").endswith("或另一个工具？）。")


def test_a_parameter_refused_by_its_validator_shows_in_chinese_beside_pydantics_words():
    from facelora.config import TrainConfig
    from facelora.config.overrides import apply
    from facelora.errors import said_by

    with pytest.raises(ConfigError) as refused:
        apply(TrainConfig(), {"optimizer_type": "x", "network_dim": "abc"})
    english, chinese = _shown(refused.value)
    assert english == str(refused.value) == (
        "Invalid parameter(s): network_dim: Input should be a valid integer, unable to parse string as an integer "
        "(got 'abc'); optimizer_type: Value error, unknown optimizer 'x'; choose one of AdamW, AdamW8bit, "
        "PagedAdamW8bit, PagedAdamW, DAdaptAdam, Adafactor, Prodigy, Lion, Lion8bit, PagedLion8bit, SGDNesterov "
        "(got 'x')")
    assert chinese.startswith("参数无效：network_dim：Input should be a valid integer")  # pydantic's own words
    assert "optimizer_type：未知的优化器 'x'；请从以下选择：AdamW" in chinese and "Value error" not in chinese
    assert said_by(refused.value).text == english  # an event or a report keeps the English, as JSON holds it
