"""The files a run writes, on the main process only (the others wait for it): the LoRA files
(each, under save_state, with the state to resume from), save_last_n_epochs' removal of older
epoch files, and the sample images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..project import Project, samples_dir
from . import checkpoints
from . import resume as saved
from .progress import Reporter
from .samples import SamplePrompt, make_samples
from .state import LoopState


class RunFiles:
    def __init__(self, project: Project, cfg: TrainConfig, accelerator: Any, network: Any, optimizer: Any,
                 scheduler: Any, info: checkpoints.RunInfo, reporter: Reporter, model: Any,
                 prompts: list[SamplePrompt]):
        self.project, self.cfg, self.accelerator, self.reporter = project, cfg, accelerator, reporter
        self.network, self.optimizer, self.scheduler, self.info = network, optimizer, scheduler, info
        self.model, self.prompts = model, prompts
        self.main = accelerator.is_main_process
        self.files: list[Path] = []  # LoRA files of this run still on disk, in the order written
        self.samples: list[Path] = []

    def lora(self, path: Path, kind: str, epoch: int, state: LoopState) -> None:
        """A LoRA file of the network as it is now (and, with save_state, the state to resume from)."""
        if self.main:
            lora = self.accelerator.unwrap_model(self.network)
            checkpoints.save(lora, self.info, path, epoch, state.global_step, state.validation_loss)
            self.files.append(path)
            self.reporter.saved(path, state.global_step, epoch, kind)
            if self.cfg.save_state:
                saved.save_state(self.project.state_dir, lora, self.optimizer, self.scheduler, state, self.cfg,
                                 scaler=self.accelerator.scaler, finished=kind == "final",
                                 num_processes=self.accelerator.num_processes)
        self.accelerator.wait_for_everyone()

    def epoch_end(self, epoch: int, last: bool, state: LoopState) -> None:
        """What an epoch's end saves: its file when save_every_n_epochs asks (the final file at the
        last), the epoch file that falls out of save_last_n_epochs' window, and the samples."""
        cfg = self.cfg
        if last or (cfg.save_every_n_epochs and epoch % cfg.save_every_n_epochs == 0):
            self.lora(checkpoints.epoch_path(cfg, epoch, final=last), "final" if last else "epoch", epoch, state)
            stale = None if last else checkpoints.stale_epoch_file(cfg, epoch)
            if stale is not None and self.main:
                stale.unlink()
                self.files = [f for f in self.files if f != stale]
                self.reporter.removed(stale)
        if self.prompts and epoch % cfg.sample_every_n_epochs == 0:
            if self.main:
                paths = make_samples(self.model, self.prompts, samples_dir(cfg.output_dir), cfg.output_name,
                                     epoch, sampler=cfg.sample_sampler, clip_skip=cfg.clip_skip, base_seed=cfg.seed,
                                     autocast=self.accelerator.autocast)
                self.samples += paths
                self.reporter.samples(paths, state.global_step, epoch)
            self.accelerator.wait_for_everyone()
