"""How `facelora train` runs a project: the command's options, and what a GUI job's options file
holds. The training parameters themselves are the project's TrainConfig (facelora.toml);
`overrides` changes them for this run only, by Kohya's names. Light to import (pydantic only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TrainOptions(BaseModel):
    """Every choice `train` takes besides the parameters; the CLI's options are these fields."""

    model_config = ConfigDict(extra="forbid")

    base_model: str | None = Field(None, description="SD1.5 base model: a .safetensors file, a diffusers folder, or "
                                                     "'tiny' (the test model); default: the project's "
                                                     "pretrained_model_name_or_path")
    resume: bool = Field(False, description="go on from the state saved with the last file (save_state), after an "
                                            "interruption")
    allow_pickle: bool = Field(False, description="allow a .ckpt base model (a pickle, read with weights_only=True); "
                                                  "only for files you trust")
    num_processes: int = Field(1, ge=1, description="train on this many GPUs (processes; on a machine without a GPU, "
                                                    "CPU processes): facelora launches itself through accelerate")
    preset: str | None = Field(None, description="static, dynamic or dynamic-adafactor: the tutorial's "
                                                 "learning-rate schemes, applied before the other parameters")
    save: bool = Field(False, description="save the base model, the preset and the parameters given here into "
                                          "facelora.toml, so the next run uses them too")
    overwrite: bool = Field(False, description="a new run replaces the files of an earlier run of the same "
                                               "output_name (they are deleted first)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="training parameters for this run only, "
                                                                        "by Kohya's names (not saved)")
