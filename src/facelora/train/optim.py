"""Optimizers and learning-rate schedulers by Kohya's names, with Kohya's `optimizer_args`.

OPTIMIZERS and SCHEDULERS are the one list of each: the config validates names against them, the
CLI's help and the GUI's choices list them, and training builds from them. A new optimizer is one
entry in OPTIMIZERS (where its class lives and how Kohya adjusts its arguments).

The UNet's and the text encoder's LoRA weights form separate parameter groups with their own
learning rates (unet_lr, text_encoder_lr); a part that is not trained, or whose rate is 0, has
no group. D-Adaptation, Prodigy and Adafactor (relative_step) find their own step size.
torch and the optimizer packages are imported when an optimizer is built, so the tables stay
light to import (the config and `facelora --help` read them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, FaceloraError
from ..messages import Message, said

if TYPE_CHECKING:
    import torch

    from ..config import TrainConfig

GROUP_UNET = "unet"
GROUP_TE = "textencoder"  # Kohya's TensorBoard tag: lr/textencoder

Params = list["torch.nn.Parameter"]


def _class(module: str, name: str, package: str) -> type:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        raise FaceloraError("The {name} optimizer needs the '{package}' package: pip install {package}", name=name,
                            package=package) from None


def _bnb(name: str) -> Callable[[], type]:
    """bitsandbytes' optimizer `name` (0.45 and later run their 8-bit and paged optimizers on the
    CPU too; a paged one pages its state out of the GPU when memory runs short)."""
    return lambda: _class("bitsandbytes.optim", name, "bitsandbytes")


def bitsandbytes_imports() -> bool:
    """Whether bitsandbytes can be used here (its import fails on some machines)."""
    try:
        importlib.import_module("bitsandbytes.optim")
    except Exception:  # a broken build raises more than ImportError (RuntimeError, OSError)
        return False
    return True


def _torch(name: str) -> Callable[[], type]:
    return lambda: getattr(importlib.import_module("torch.optim"), name)


def _adamw_args(kwargs: dict[str, Any], params: Params, notes: list[str]) -> None:
    if "fused" not in kwargs and "foreach" not in kwargs:
        # one kernel for all the LoRA's tensors, where torch has it (CUDA and the CPU)
        kwargs["fused"] = all(p.device.type in ("cuda", "cpu") for p in params)


def _sgd_nesterov_args(kwargs: dict[str, Any], params: Params, notes: list[str]) -> None:
    kwargs.setdefault("momentum", 0.9)
    kwargs["nesterov"] = True


def _adafactor_args(kwargs: dict[str, Any], params: Params, notes: list[str]) -> None:
    kwargs.setdefault("relative_step", True)  # Kohya's default
    if kwargs.get("warmup_init") and not kwargs["relative_step"]:
        notes.append(said("Adafactor: warmup_init needs relative_step, so relative_step is set to True (as Kohya does)."))
        kwargs["relative_step"] = True
    kwargs.setdefault("scale_parameter", bool(kwargs["relative_step"]))
    kwargs.setdefault("warmup_init", False)


def _no_args(kwargs: dict[str, Any], params: Params, notes: list[str]) -> None:
    pass


@dataclass(frozen=True)
class OptimizerKind:
    """One optimizer of Kohya's: where its class lives and how Kohya sets its arguments."""

    load: Callable[[], type]
    adjust: Callable[[dict[str, Any], Params, list[str]], None] = _no_args  # kwargs, all params, notes
    adaptive: bool = False  # finds its own step size: D-Adaptation, Prodigy (the rate is d x lr)
    plain: str | None = None  # a bitsandbytes optimizer: the same update in torch, used where it cannot import
    relative_step: bool = False  # may compute its own rate and ignore the given ones (Adafactor)


OPTIMIZERS: dict[str, OptimizerKind] = {
    "AdamW": OptimizerKind(_torch("AdamW"), _adamw_args),
    "AdamW8bit": OptimizerKind(_bnb("AdamW8bit"), plain="AdamW"),
    "PagedAdamW8bit": OptimizerKind(_bnb("PagedAdamW8bit"), plain="AdamW"),
    "PagedAdamW": OptimizerKind(_bnb("PagedAdamW"), plain="AdamW"),
    "DAdaptAdam": OptimizerKind(lambda: _class("dadaptation", "DAdaptAdam", "dadaptation"), adaptive=True),
    "Adafactor": OptimizerKind(lambda: _class("transformers.optimization", "Adafactor", "transformers"),
                               _adafactor_args, relative_step=True),
    "Prodigy": OptimizerKind(lambda: _class("prodigyopt", "Prodigy", "prodigyopt"), adaptive=True),
    "Lion": OptimizerKind(lambda: _class("lion_pytorch", "Lion", "lion-pytorch")),
    "Lion8bit": OptimizerKind(_bnb("Lion8bit"), plain="Lion"),
    "PagedLion8bit": OptimizerKind(_bnb("PagedLion8bit"), plain="Lion"),
    "SGDNesterov": OptimizerKind(_torch("SGD"), _sgd_nesterov_args),
}


def _diffusers_scheduler(name: str) -> Callable[..., Any]:
    def build(cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int, num_processes: int) -> Any:
        from diffusers.optimization import get_scheduler

        return get_scheduler(
            name, optimizer,
            num_warmup_steps=cfg.warmup_steps(total_steps) * num_processes,
            num_training_steps=total_steps * num_processes,
            num_cycles=cfg.lr_scheduler_num_cycles,
            power=cfg.lr_scheduler_power,
        )

    return build


def _adafactor_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int, num_processes: int) -> Any:
    from transformers.optimization import AdafactorSchedule

    return AdafactorSchedule(optimizer, initial_lr=cfg.learning_rate)


# Kohya's lr_scheduler names -> builder(cfg, optimizer, total_steps, num_processes).
SCHEDULERS: dict[str, Callable[..., Any]] = {
    **{name: _diffusers_scheduler(name) for name in (
        "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")},
    "adafactor": _adafactor_scheduler,
}


@dataclass
class Optim:
    optimizer: torch.optim.Optimizer
    groups: list[str]  # GROUP_UNET / GROUP_TE, in param_groups order
    description: str  # Kohya's ss_optimizer: "module.Class(arg=value,...)"
    relative_step: bool = False  # Adafactor computing its own learning rate
    notes: list[Message] = field(default_factory=list)

    @property
    def adaptive(self) -> bool:
        """D-Adaptation and Prodigy: the effective rate is d x lr (logged as lr/d*lr)."""
        return "d" in self.optimizer.param_groups[0]


def make_optimizer(cfg: TrainConfig, unet_params: Params, te_params: Params,
                   unet_blocks: dict[float, Params] | None = None) -> Optim:
    """The optimizer `cfg.optimizer_type` over the LoRA's parameters, one group per trained part;
    with unet_blocks (Kohya's block-wise rates: lr weight -> the UNet's parameters at it), one
    UNet group per weight at unet_lr x weight."""
    kwargs: dict[str, Any] = cfg.optimizer_kwargs()
    notes: list[Message] = []
    parts = [(GROUP_TE, te_params, cfg.effective_text_encoder_lr), (GROUP_UNET, unet_params, cfg.effective_unet_lr)]
    if unet_blocks:
        parts = parts[:1] + [(GROUP_UNET if w == 1 else f"{GROUP_UNET}_x{w:g}", params, cfg.effective_unet_lr * w)
                             for w, params in sorted(unet_blocks.items(), key=lambda item: item[0] != 1)]
    for name, params, lr in parts:
        if params and lr == 0:
            notes.append(said("The text encoder's learning rate is 0: its LoRA stays as it starts (zero change)."
                              if name == GROUP_TE else
                              "The UNet's learning rate is 0: its LoRA stays as it starts (zero change)."))
    groups = [(name, params, lr) for name, params, lr in parts if params and lr > 0]
    if not groups:
        raise ConfigError("Nothing to train: the trained parts' learning rates are all 0. Set unet_lr or text_encoder_lr.")
    name = cfg.optimizer_type
    kind = OPTIMIZERS[name]  # the config validated the name against this table
    kind.adjust(kwargs, [p for _, params, _ in groups for p in params], notes)
    cls = kind.load()
    relative_step = kind.relative_step and bool(kwargs["relative_step"])

    if kind.adaptive and min(g[2] for g in groups) <= 0.1:
        notes.append(said("{optimizer} finds its own step size and expects learning rates around 1.0; {lr:g} makes it "
                          "take tiny steps (Kohya warns the same).", optimizer=name, lr=min(g[2] for g in groups)))

    if relative_step:
        # Adafactor computes the rate from the step count and the weights' scale; the given rates
        # are ignored (Kohya: "unet_lr and text_encoder_lr are ignored").
        param_groups = [{"params": params} for _, params, _ in groups]
        optimizer = cls(param_groups, lr=None, **kwargs)
        if len({g[2] for g in groups}) > 1:
            notes.append(said("Adafactor with relative_step sets its own learning rate: unet_lr and text_encoder_lr "
                              "are ignored."))
    else:
        param_groups = [{"params": params, "lr": glr} for _, params, glr in groups]
        try:
            optimizer = cls(param_groups, lr=cfg.learning_rate, **kwargs)
        except TypeError as e:
            raise ConfigError("optimizer_args {args} do not fit {name}: {error}", args=str(cfg.optimizer_args), name=name,
                              error=str(e)) from None
    args = ",".join(f"{k}={v}" for k, v in cfg.optimizer_kwargs().items())
    description = f"{cls.__module__}.{cls.__name__}" + (f"({args})" if args else "")
    return Optim(optimizer, [g[0] for g in groups], description, relative_step, notes)


def make_scheduler(cfg: TrainConfig, optim: Optim, total_steps: int, num_processes: int = 1):
    """The learning-rate scheduler `cfg.lr_scheduler` (diffusers' implementations of Kohya's
    names). accelerate steps a prepared scheduler once per process, so the step counts are
    multiplied by the number of processes, as Kohya does."""
    name = cfg.lr_scheduler
    if optim.relative_step and name != "adafactor":
        optim.notes.append(said("Adafactor with relative_step sets its own learning rate, so the '{scheduler}' "
                                "scheduler is replaced by 'adafactor' (as Kohya does).", scheduler=name))
        name = "adafactor"
    return SCHEDULERS[name](cfg, optim.optimizer, total_steps, num_processes)


def current_lrs(optim: Optim, scheduler) -> dict[str, float]:
    """The figures Kohya logs: lr/unet, lr/textencoder, and lr/d*lr for D-Adaptation and Prodigy."""
    lrs = list(scheduler.get_last_lr())
    out: dict[str, float] = {}
    for name, group, lr in zip(optim.groups, optim.optimizer.param_groups, lrs):
        out[f"lr/{name}"] = float(lr)
        if optim.adaptive:
            out[f"lr/d*lr/{name}"] = float(group["d"]) * float(group["lr"])
    if optim.adaptive:
        first = optim.optimizer.param_groups[0]
        out["lr/d*lr"] = float(first["d"]) * float(first["lr"])
    return out
