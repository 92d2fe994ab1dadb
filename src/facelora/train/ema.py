"""An exponential moving average of the LoRA's weights, as OneTrainer keeps one: after every
optimizer step, ema = decay x ema + (1 - decay) x weight. Saved as its own file beside each save
(filenames.ema_filename), so the grid can compare the averaged weights with the raw ones; kept in
the training state too (state_dict), so a resumed run's average goes on as an unbroken run's."""

from __future__ import annotations

import torch

from ..errors import ConfigError


class WeightsEMA:
    def __init__(self, network: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.params = [(k, p) for k, p in network.named_parameters() if p.requires_grad]
        self.shadow = {k: p.detach().clone().float() for k, p in self.params}
        self.updates = 0  # optimizer steps averaged in

    @torch.no_grad()
    def update(self) -> None:
        for k, p in self.params:
            self.shadow[k].lerp_(p.detach().float(), 1.0 - self.decay)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """The average a state_dict holds; ValueError when it is of another decay or network."""
        shadow = state["shadow"]
        if float(state["decay"]) != self.decay:
            raise ConfigError("it has decay {saved}, this EMA {decay}", saved=state["decay"], decay=self.decay)
        if set(shadow) != set(self.shadow) or any(shadow[k].shape != v.shape for k, v in self.shadow.items()):
            raise ValueError("other weights (modules or rank) than this network's")
        for k, v in self.shadow.items():
            v.copy_(shadow[k])
        self.updates = int(state["updates"])

    @torch.no_grad()
    def file_tensors(self, network) -> dict[str, torch.Tensor]:
        """The network's file tensors (kohya_state_dict, whatever the type) with the averaged
        weights in place of the trained ones, which are put back after."""
        trained = [p.detach().clone() for _, p in self.params]
        for k, p in self.params:
            p.copy_(self.shadow[k])
        try:
            return network.kohya_state_dict()
        finally:
            for (_, p), t in zip(self.params, trained):
                p.copy_(t)
