"""A test device, run instead of `python -m facelora`: `python tests/kill_points.py train PROJECT`
with FACELORA_TEST_KILL_AT=<point>[:<step>] in the environment trains as `facelora train` does,
but the process kills itself with SIGKILL at that point, as a crash or `kill -9` would. The
points are marked by what training already does, wrapped here once before the command runs, so
the training code holds no trace of this:

  step         after an optimizer step, before anything is saved (the progress reporter's step)
  lora-saved   after a LoRA file, before its state (the reporter's `saved`)
  state-files  a state's files written, its manifest not yet (a kill in the middle of a save)
"""

from __future__ import annotations

import functools
import os
import signal

ENV = "FACELORA_TEST_KILL_AT"


def install(want: str) -> None:
    from facelora.train import progress, resume

    name, _, at = want.partition(":")

    def kill_at(point: str, step: int) -> None:
        if name == point and (not at or int(at) == step):
            os.kill(os.getpid(), signal.SIGKILL)

    def after(point: str, method, step_arg: int):
        """`method`, then the kill when its argument number `step_arg` is the step asked for."""
        @functools.wraps(method)
        def wrapped(self, *args):
            method(self, *args)
            kill_at(point, args[step_arg])
        return wrapped

    progress.Reporter.step = after("step", progress.Reporter.step, 0)  # step(step, epoch, ...)
    progress.Reporter.saved = after("lora-saved", progress.Reporter.saved, 1)  # saved(path, step, ...)
    write_manifest = resume.write_manifest

    def before_manifest(folder, manifest):
        kill_at("state-files", manifest["global_step"])
        write_manifest(folder, manifest)

    resume.write_manifest = before_manifest


if __name__ == "__main__":
    if os.environ.get(ENV):
        install(os.environ[ENV])
    from facelora.cli import app

    app(prog_name="facelora")
