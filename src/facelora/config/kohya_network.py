"""The kohya_ss GUI's network keys (`LoRA_type`, `conv_dim`, `conv_alpha` and its LyCORIS options)
as the network_module and network_args its lora_gui.py train_model() puts on sd-scripts' command
line (bmaltais/kohya_ss 45088f04), so an imported GUI file trains the network kohya_ss trains.

kohya_gui.gui_values calls network_values on a GUI file's keys; nothing here touches a project.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

# The GUI's widget values for the keys a file leaves out (lora_gui.py's gr.Slider/Checkbox values).
GUI_DEFAULTS: dict[str, Any] = {
    "LyCORIS_preset": "full", "conv_dim": 1, "conv_alpha": 1, "use_tucker": False, "use_scalar": False,
    "rank_dropout": 0, "module_dropout": 0, "rank_dropout_scale": False, "bypass_mode": False, "dora_wd": False,
    "train_norm": False, "factor": -1, "use_cp": False, "decompose_both": False, "constrain": 0.0,
    "rescaled": False, "train_on_input": True, "unit": 1,
}
# LyCORIS types: lora_gui.py's network_args f-strings, word for word (use_tucker twice, as there).
_LYCORIS = {
    "LyCORIS/LoCon": "preset={LyCORIS_preset} conv_dim={conv_dim} conv_alpha={conv_alpha} use_tucker={use_tucker} "
                     "rank_dropout={rank_dropout} bypass_mode={bypass_mode} dora_wd={dora_wd} "
                     "module_dropout={module_dropout} use_tucker={use_tucker} use_scalar={use_scalar} "
                     "rank_dropout_scale={rank_dropout_scale} algo=locon train_norm={train_norm}",
    "LyCORIS/LoHa": "preset={LyCORIS_preset} conv_dim={conv_dim} conv_alpha={conv_alpha} use_tucker={use_tucker} "
                    "rank_dropout={rank_dropout} bypass_mode={bypass_mode} dora_wd={dora_wd} "
                    "module_dropout={module_dropout} use_tucker={use_tucker} use_scalar={use_scalar} "
                    "rank_dropout_scale={rank_dropout_scale} algo=loha train_norm={train_norm}",
    "LyCORIS/LoKr": "preset={LyCORIS_preset} conv_dim={conv_dim} conv_alpha={conv_alpha} use_tucker={use_tucker} "
                    "rank_dropout={rank_dropout} bypass_mode={bypass_mode} dora_wd={dora_wd} "
                    "module_dropout={module_dropout} factor={factor} use_cp={use_cp} use_scalar={use_scalar} "
                    "decompose_both={decompose_both} rank_dropout_scale={rank_dropout_scale} algo=lokr "
                    "train_norm={train_norm}",
}
# Kohya's own LoRA (networks.lora): the GUI adds these keys when they are set (not 0 or "").
_KOHYA_LORA_KEYS = ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold", "block_dims",
                    "block_alphas", "conv_block_dims", "conv_block_alphas", "rank_dropout", "module_dropout")
# LoRA+ ratios, which the GUI appends to every type's network_args when set.
_LORAPLUS_KEYS = ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")
# LoRA_type -> network_module, for the types facelora trains.
LORA_TYPES = {"Standard": "networks.lora", "Kohya LoCon": "networks.lora", **{t: "lycoris.kohya" for t in _LYCORIS}}
# The GUI's other types, with what each is in sd-scripts, for the refusal.
_OTHER_TYPES = {
    "Kohya LoHa": "sd-scripts' networks.loha (facelora trains LoHa as LyCORIS/LoHa)",
    "Kohya LoKr": "sd-scripts' networks.lokr (facelora trains LoKr as LyCORIS/LoKr)",
    "Kohya DyLoRA": "networks.dylora", "LoRA-FA": "networks.lora_fa",
    "LyCORIS/iA3": "lycoris algo=ia3", "LyCORIS/BOFT": "lycoris algo=boft", "LyCORIS/Diag-OFT": "lycoris algo=diag-oft",
    "LyCORIS/DyLoRA": "lycoris algo=dylora", "LyCORIS/GLoRA": "lycoris algo=glora",
    "LyCORIS/Native Fine-Tuning": "lycoris algo=full",
}
# Every GUI key read here (none of them is an sd-scripts argument of its own).
NETWORK_KEYS = {"LoRA_type", *GUI_DEFAULTS, *_KOHYA_LORA_KEYS, *_LORAPLUS_KEYS}


def network_values(out: dict[str, Any]) -> list[str]:
    """Replace the GUI's network keys in `out` by network_module and network_args as lora_gui.py
    builds them; a note saying what LoRA_type became. Keys the chosen type does not read are
    dropped, as the GUI drops them."""
    given = {k: out.pop(k) for k in list(out) if k in NETWORK_KEYS}
    if not given:
        return []
    lora_type = given.get("LoRA_type", "Standard")  # the GUI's default type
    values = {**GUI_DEFAULTS, **given}
    if lora_type == "LoCon":  # the GUI's update_my_data reads its old name so
        lora_type = "LyCORIS/LoCon"
    if lora_type not in LORA_TYPES:
        raise ConfigError("LoRA_type '{lora_type}' ({what}): facelora trains {types}; train this network with "
                          "Kohya's trainer, or choose one of these." if lora_type in _OTHER_TYPES else
                          "LoRA_type '{lora_type}': facelora trains {types}; train this network with Kohya's trainer, "
                          "or choose one of these.",
                          lora_type=lora_type, what=_OTHER_TYPES.get(lora_type, ""), types=", ".join(LORA_TYPES))
    module = out["network_module"] = LORA_TYPES[lora_type]
    if module == "lycoris.kohya":
        text = _LYCORIS[lora_type].format(**values)
        out.pop("network_dropout", None)  # lycoris.kohya's create_network does not read neuron_dropout
    else:
        text = f'conv_dim="{values["conv_dim"]}" conv_alpha="{values["conv_alpha"]}"' \
            if lora_type == "Kohya LoCon" and _is_set(values["conv_dim"]) else ""
        text += "".join(f" {k}={values[k]}" for k in _KOHYA_LORA_KEYS if _is_set(values.get(k)))
    text += "".join(f" {k}={values[k]}" for k in _LORAPLUS_KEYS if _is_set(values.get(k)))
    args = _args([*(out.get("network_args") or []), *text.replace('"', "").split()])
    if args:
        out["network_args"] = args
    return [f"LoRA_type '{lora_type}' is network_module {module}"
            + (f" with network_args {' '.join(args)}" if args else "") + " (as the kohya_ss GUI runs it)."]


def _is_set(value: Any) -> bool:
    return value not in (None, "", 0, 0.0, False, "0")


def _args(items: list[str]) -> list[str]:
    """'key=value' items as sd-scripts reads them into a dict: a repeated key once, its last value."""
    by_key: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        by_key[key] = value
    return [f"{k}={v}" for k, v in by_key.items()]
