"""The files a run writes, on the main process only (the others wait for it): the LoRA files
(each, under save_state, with the state to resume from), save_last_n_epochs' removal of older
epoch files, and the sample images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import TrainConfig
from ..filenames import samples_dir
from ..networks import evaluating
from ..project import Project
from . import checkpoints
from . import resume as saved
from .progress import Reporter
from .samples import SamplePrompt, make_samples
from .state import LoopState


class RunFiles:
    def __init__(self, project: Project, cfg: TrainConfig, accelerator: Any, network: Any, optimizer: Any,
                 scheduler: Any, info: checkpoints.RunInfo, reporter: Reporter, model: Any,
                 prompts: list[SamplePrompt], ema: Any = None):
        self.project, self.cfg, self.accelerator, self.reporter = project, cfg, accelerator, reporter
        self.network, self.optimizer, self.scheduler, self.info = network, optimizer, scheduler, info
        self.model, self.prompts = model, prompts
        self.live = None  # evaluate.live.LiveLikeness, made with the first samples
        self.ema = ema  # the Stepper's WeightsEMA when ema_decay is set
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
            if self.ema is not None:  # the averaged weights, as their own file beside it
                ema = checkpoints.save(lora, self.info, checkpoints.ema_path(path), epoch, state.global_step,
                                       tensors=self.ema.file_tensors(lora))
                self.files.append(ema)
                self.reporter.saved(ema, state.global_step, epoch, kind)
            if self.cfg.save_state:
                saved.save_state(self.project.state_dir, lora, self.optimizer, self.scheduler, state, self.cfg,
                                 scaler=self.accelerator.scaler, ema=self.ema, finished=kind == "final",
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
                for old in [stale] + [p for p in [checkpoints.ema_path(stale)] if p.is_file()]:
                    old.unlink()
                    self.files = [f for f in self.files if f != old]
                    self.reporter.removed(old)
        if self.prompts and epoch % cfg.sample_every_n_epochs == 0:
            if self.main:
                with evaluating(self.network):  # the LoRA as saved: no dropout
                    paths = make_samples(self.model, self.prompts, samples_dir(cfg.output_dir), cfg.output_name,
                                         epoch, sampler=cfg.sample_sampler, clip_skip=cfg.clip_skip,
                                         base_seed=cfg.seed, autocast=self.accelerator.autocast)
                self.samples += paths
                self.reporter.samples(paths, state.global_step, epoch)
                self.likeness(paths, epoch, state)
            self.accelerator.wait_for_everyone()

    def likeness(self, paths: list[Path], epoch: int, state: LoopState) -> None:
        """The epoch's samples scored against the training photos (live likeness)."""
        from ..evaluate.live import LiveLikeness  # dlib loads only for a run that makes samples

        if self.live is None:
            photos = list(dict.fromkeys(im.path for im in self.info.data.images))
            self.live = LiveLikeness(photos, self.info.trigger, self.project.reference_cache)
        scores, message = self.live.score([(p, sp.prompt) for p, sp in zip(paths, self.prompts)])
        self.reporter.likeness(scores, state.global_step, epoch, len(paths), message)
