"""What each network type takes as network_args, and the clear error for what it cannot take.
No torch here: a config is checked (config import, config set, plan) without loading a network.
A new network type adds its check to CHECKS (tests/test_networks.py ties CHECKS to NETWORK_MODULES)."""

from __future__ import annotations

from typing import Callable

from ..errors import FaceloraError
from .blocks import ARGS as BLOCK_ARGS
from .blocks import block_lr_weights

# sd-scripts' networks.lora dropouts beside network_dropout (training only)
DROPOUT_ARGS = ("rank_dropout", "module_dropout")
# networks.lora's network_args, as sd-scripts reads them (Kohya's LoCon, dropouts, block-wise rates)
LORA_ARGS = ("conv_dim", "conv_alpha") + DROPOUT_ARGS + BLOCK_ARGS
# The algorithms facelora trains through lycoris (lycoris' "lora" is LoCon on Linear layers only
# when conv_dim is unset) and the network_args lycoris.kohya reads that facelora passes on.
LYCORIS_ALGOS = ("lora", "locon", "loha", "lokr")
LYCORIS_ARGS = {
    "algo", "conv_dim", "conv_alpha", "dropout", "rank_dropout", "module_dropout", "dora_wd", "wd_on_output",
    "use_tucker", "use_cp", "use_scalar", "factor", "decompose_both", "full_matrix", "rs_lora", "preset", "train_norm",
    "bypass_mode",  # not True: facelora picks each module's cheaper equivalent forward (lycoris_forward.py)
    "rank_dropout_scale",  # the kohya_ss GUI passes it to every LyCORIS type; lycoris.kohya does not read it
}


def _positive(network_args: dict) -> None:
    for key in ("conv_dim", "conv_alpha"):
        if key in network_args and not float(network_args[key]) > 0:
            raise FaceloraError("network_args {key}={value}: must be above 0.", key=key, value=network_args[key])


def check_probabilities(values: dict) -> None:
    """Dropout probabilities (None: unset) from 0 up to, not including, 1."""
    for key, value in values.items():
        if value is not None and not 0 <= float(value) < 1:
            raise FaceloraError("network_args {key}={value}: a probability, from 0 up to 1.", key=key, value=value)


def check_lora_args(network_args: dict) -> None:
    """A clear error for a network_arg facelora's networks.lora does not take or cannot use."""
    unknown = sorted(set(network_args) - set(LORA_ARGS))
    if unknown:
        raise FaceloraError("network_args {unknown}: networks.lora in facelora takes {known} (LoHa, LoKr and DoRA: "
                            "network_module lycoris.kohya).", unknown=unknown, known=", ".join(LORA_ARGS))
    _positive(network_args)
    check_probabilities({k: network_args[k] for k in DROPOUT_ARGS if k in network_args})
    if "conv_alpha" in network_args and "conv_dim" not in network_args:
        raise FaceloraError("network_args conv_alpha needs conv_dim (the rank of the 3x3 convolutions' LoRA).")
    block_lr_weights(network_args)


def check_lycoris_args(network_args: dict) -> None:
    """A clear error for network_args lycoris.kohya would misread or facelora does not pass on."""
    unknown = sorted(set(network_args) - LYCORIS_ARGS)
    if unknown:
        raise FaceloraError("network_args {unknown}: lycoris.kohya in facelora takes {known}.", unknown=unknown,
                            known=", ".join(sorted(LYCORIS_ARGS)))
    algo = str(network_args.get("algo", "lora")).lower()
    if algo not in LYCORIS_ALGOS:
        raise FaceloraError("network_args algo={algo}: facelora trains the LyCORIS algorithms {known}.", algo=algo,
                            known=", ".join(LYCORIS_ALGOS))
    _positive(network_args)
    check_probabilities({k: network_args[k] for k in ("dropout",) + DROPOUT_ARGS if k in network_args})
    if lycoris_true(network_args.get("bypass_mode")) and lycoris_true(network_args.get("dora_wd")):
        raise FaceloraError("network_args bypass_mode=True with dora_wd=True: lycoris' bypass forward leaves DoRA's "
                            "weight decomposition out, so it would train a plain LoRA. Leave bypass_mode unset: "
                            "facelora computes DoRA in an equivalent form that needs no weight-sized tensors.")


def lycoris_true(value) -> bool:
    """As lycoris reads a boolean network_arg (utils.str_bool): anything but "false"; unset is false."""
    return value is not None and str(value).lower() != "false"


CHECKS: dict[str, Callable[[dict], None]] = {"networks.lora": check_lora_args, "lycoris.kohya": check_lycoris_args}
