"""Optimizers and learning-rate schedulers by Kohya's names, with Kohya's `optimizer_args`.

The UNet's and the text encoder's LoRA weights form separate parameter groups with their own
learning rates (unet_lr, text_encoder_lr); a part that is not trained, or whose rate is 0, has
no group. D-Adaptation, Prodigy and Adafactor (relative_step) find their own step size.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import ADAPTIVE, ConfigError, TrainConfig
from ..errors import FaceloraError

GROUP_UNET = "unet"
GROUP_TE = "textencoder"  # Kohya's TensorBoard tag: lr/textencoder


@dataclass
class Optim:
    optimizer: torch.optim.Optimizer
    groups: list[str]  # GROUP_UNET / GROUP_TE, in param_groups order
    description: str  # Kohya's ss_optimizer: "module.Class(arg=value,...)"
    relative_step: bool = False  # Adafactor computing its own learning rate
    notes: list[str] = field(default_factory=list)

    @property
    def adaptive(self) -> bool:
        """D-Adaptation and Prodigy: the effective rate is d x lr (logged as lr/d*lr)."""
        return "d" in self.optimizer.param_groups[0]


def _class(module: str, name: str, package: str, cuda_only: bool = False) -> type:
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        where = " (it needs a CUDA GPU)" if cuda_only else ""
        raise FaceloraError(f"The {name} optimizer needs the '{package}' package{where}: pip install {package}") from None


def make_optimizer(cfg: TrainConfig, unet_params: list[torch.nn.Parameter],
                   te_params: list[torch.nn.Parameter]) -> Optim:
    """The optimizer `cfg.optimizer_type` over the LoRA's parameters, one group per trained part."""
    kwargs: dict[str, Any] = cfg.optimizer_kwargs()
    notes: list[str] = []
    parts = [(GROUP_TE, te_params, cfg.effective_text_encoder_lr), (GROUP_UNET, unet_params, cfg.effective_unet_lr)]
    for name, params, lr in parts:
        if params and lr == 0:
            notes.append(f"The {'text encoder' if name == GROUP_TE else 'UNet'}'s learning rate is 0: its LoRA "
                         f"stays as it starts (zero change).")
    groups = [(name, params, lr) for name, params, lr in parts if params and lr > 0]
    if not groups:
        raise ConfigError("Nothing to train: the trained parts' learning rates are all 0. Set unet_lr or text_encoder_lr.")
    kind = cfg.optimizer_type
    lr = cfg.learning_rate
    relative_step = False

    if kind == "AdamW":
        cls = torch.optim.AdamW
        if "fused" not in kwargs and "foreach" not in kwargs:
            # one kernel for all the LoRA's tensors, where torch has it (CUDA and the CPU)
            kwargs["fused"] = all(p.device.type in ("cuda", "cpu") for _, params, _ in groups for p in params)
    elif kind in ("AdamW8bit", "Lion8bit"):
        cls = _class("bitsandbytes.optim", kind, "bitsandbytes", cuda_only=True)
    elif kind == "Lion":
        cls = _class("lion_pytorch", "Lion", "lion-pytorch")
    elif kind == "SGDNesterov":
        cls = torch.optim.SGD
        kwargs.setdefault("momentum", 0.9)
        kwargs["nesterov"] = True
    elif kind == "DAdaptAdam":
        cls = _class("dadaptation", "DAdaptAdam", "dadaptation")
    elif kind == "Prodigy":
        cls = _class("prodigyopt", "Prodigy", "prodigyopt")
    elif kind == "Adafactor":
        cls = _class("transformers.optimization", "Adafactor", "transformers")
        kwargs.setdefault("relative_step", True)  # Kohya's default
        if kwargs.get("warmup_init") and not kwargs["relative_step"]:
            notes.append("Adafactor: warmup_init needs relative_step, so relative_step is set to True (as Kohya does).")
            kwargs["relative_step"] = True
        relative_step = bool(kwargs["relative_step"])
        kwargs.setdefault("scale_parameter", relative_step)
        kwargs.setdefault("warmup_init", False)
    else:  # config validates the name; this is a list kept in step with config.OPTIMIZERS
        raise ConfigError(f"Unknown optimizer '{kind}'.")

    if kind in ADAPTIVE and min(g[2] for g in groups) <= 0.1:
        notes.append(f"{kind} finds its own step size and expects learning rates around 1.0; "
                     f"{min(g[2] for g in groups):g} makes it take tiny steps (Kohya warns the same).")

    if relative_step:
        # Adafactor computes the rate from the step count and the weights' scale; the given rates
        # are ignored (Kohya: "unet_lr and text_encoder_lr are ignored").
        param_groups = [{"params": params} for _, params, _ in groups]
        optimizer = cls(param_groups, lr=None, **kwargs)
        if len({g[2] for g in groups}) > 1:
            notes.append("Adafactor with relative_step sets its own learning rate: unet_lr and text_encoder_lr are ignored.")
    else:
        param_groups = [{"params": params, "lr": glr} for _, params, glr in groups]
        try:
            optimizer = cls(param_groups, lr=lr, **kwargs)
        except TypeError as e:
            raise ConfigError(f"optimizer_args {cfg.optimizer_args} do not fit {kind}: {e}") from None
    args = ",".join(f"{k}={v}" for k, v in cfg.optimizer_kwargs().items())
    description = f"{cls.__module__}.{cls.__name__}" + (f"({args})" if args else "")
    return Optim(optimizer, [g[0] for g in groups], description, relative_step, notes)


def make_scheduler(cfg: TrainConfig, optim: Optim, total_steps: int, num_processes: int = 1):
    """The learning-rate scheduler `cfg.lr_scheduler` (diffusers' implementations of Kohya's
    names). accelerate steps a prepared scheduler once per process, so the step counts are
    multiplied by the number of processes, as Kohya does."""
    name = cfg.lr_scheduler
    if optim.relative_step and name != "adafactor":
        optim.notes.append(f"Adafactor with relative_step sets its own learning rate, so the '{name}' "
                           f"scheduler is replaced by 'adafactor' (as Kohya does).")
        name = "adafactor"
    if name == "adafactor":
        from transformers.optimization import AdafactorSchedule

        return AdafactorSchedule(optim.optimizer, initial_lr=cfg.learning_rate)
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        name, optim.optimizer,
        num_warmup_steps=cfg.warmup_steps(total_steps) * num_processes,
        num_training_steps=total_steps * num_processes,
        num_cycles=cfg.lr_scheduler_num_cycles,
        power=cfg.lr_scheduler_power,
    )


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
