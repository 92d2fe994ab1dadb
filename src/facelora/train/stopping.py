"""Stopping a run on request: Ctrl-C (SIGINT) or SIGTERM (what the GUI's Stop and most process
managers send) asks the loop to stop between two steps, save the LoRA and the training state, and
return; a second Ctrl-C stops at once, without saving (the files already saved are complete,
since every write is atomic).

The handlers are installed only while training runs, and only in the main thread (Python allows
signal handlers nowhere else); elsewhere Ctrl-C arrives as a plain KeyboardInterrupt, which the
loop treats as a first press.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class StopRequest:
    """Set by the first SIGINT/SIGTERM; the loop checks `requested` between steps. The second one
    sets `twice`, puts Python's own Ctrl-C handling back and raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.requested = False
        self.twice = False
        self.signal_name = ""
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self.twice = True
            self.uninstall()
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def install(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def anywhere(self, accelerator) -> bool:
        """Asked on this process or any other since the last step: processes stop together."""
        if accelerator.num_processes == 1:
            return self.requested
        if self.requested:
            accelerator.set_trigger()
        return accelerator.check_trigger()

    def __enter__(self) -> "StopRequest":
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()
