"""The network types facelora trains, by Kohya's `network_module` name, each a module with
sd-scripts' two constructors:

    create_network(multiplier, network_dim, network_alpha, vae, text_encoder, unet, neuron_dropout=None, **kwargs)
    create_network_from_weights(multiplier, file, vae, text_encoder, unet, weights_sd=None, for_inference=False, **kwargs)
        -> (network, weights_sd)

A new type is one module beside lora.py, one line in NETWORK_MODULES and its network_args check
in args.py CHECKS (the clear error for arguments the type cannot take). The table holds import
paths and the checks need no torch, so reading the table and checking a config load no network.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import FaceloraError
from .args import CHECKS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from torch import nn

    from ..config import TrainConfig
    from ..model.sdmodel import SDModel

NETWORK_MODULES: dict[str, str] = {
    "networks.lora": "facelora.networks.lora",  # LoRA; LoCon with conv_dim/conv_alpha
    "lycoris.kohya": "facelora.networks.lycoris",  # LoCon, LoHa, LoKr, DoRA (algo=..., dora_wd=True)
}


class UnknownNetworkError(FaceloraError, ValueError):
    """A network_module facelora cannot build."""


def network_module(name: str) -> ModuleType:
    """The module that builds networks of Kohya's type `name`."""
    _known(name)
    return importlib.import_module(NETWORK_MODULES[name])


def _known(name: str) -> None:
    """An UnknownNetworkError for a network_module facelora does not train."""
    if name not in NETWORK_MODULES:
        raise UnknownNetworkError("network_module '{name}': facelora trains {modules}.", name=name,
                                  modules=", ".join(NETWORK_MODULES))


def network_kwargs(cfg: TrainConfig) -> dict:
    """cfg.network_args as the keyword arguments sd-scripts passes create_network."""
    from ..config.values import parse_kv_args

    return parse_kv_args(cfg.network_args)


def check_args(name: str, network_args: dict) -> None:
    """Network type `name`'s own check of its network_args (a FaceloraError that says what is wrong)."""
    _known(name)
    CHECKS[name](network_args)


def check_network_args(cfg: TrainConfig) -> None:
    """check_args of cfg.network_module and cfg.network_args."""
    check_args(cfg.network_module, network_kwargs(cfg))


def create_network(cfg: TrainConfig, model: SDModel, multiplier: float = 1.0):
    """A new network of cfg.network_module over the parts cfg trains, sized by network_dim and
    network_alpha, with network_dropout and cfg.network_args."""
    return network_module(cfg.network_module).create_network(
        multiplier, cfg.network_dim, cfg.network_alpha, model.vae, model.text_encoder, model.unet,
        neuron_dropout=cfg.network_dropout,
        train_unet=cfg.train_unet, train_text_encoder=cfg.train_text_encoder, family=model.family,
        **network_kwargs(cfg))


def create_network_from_weights(file, model: SDModel, multiplier: float = 1.0, network_module_name: str | None = None):
    """The network a LoRA file holds, shaped from its weights (the type from its
    ss_network_module unless given), and the weights. The network is not applied yet."""
    from ..lora_file import NETWORK_MODULE, read_lora

    weights_sd, metadata = read_lora(file)
    name = network_module_name or metadata.get("ss_network_module") or NETWORK_MODULE
    return network_module(name).create_network_from_weights(
        multiplier, file, model.vae, model.text_encoder, model.unet, weights_sd=weights_sd, family=model.family)


@contextmanager
def evaluating(network: nn.Module) -> Iterator[None]:
    """The network in eval mode for a while (no dropout: samples and validation see the LoRA
    that is saved), then back in the mode it was in."""
    was_training = network.training
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)
