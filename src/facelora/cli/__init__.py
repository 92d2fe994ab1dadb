"""The `facelora` command: one verb per step of the tutorial. Argument parsing and printing only;
the work is done by the same functions the GUI calls. One module per step (prepare, plan, train,
evaluate, run...), each registering its commands on the app of cli/app.py; the order of the
imports below is the order of `facelora --help`."""

from . import project, prepare, plan, reg, train, config, evaluate, gui, run  # noqa: F401  (registers the commands)
from .app import app

__all__ = ["app"]
