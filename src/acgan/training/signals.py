"""Stopping cleanly on SIGINT/SIGTERM: the first signal sets a flag the loop checks between steps."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class GracefulStop:
    """Turn the first SIGINT/SIGTERM into a flag checked between steps; a second one interrupts at once.

    With `repeat_interrupts=False` (a torchrun worker: torchrun forwards one signal and escalates to
    SIGKILL itself after its shutdown timeout) a second signal is only noted. Inside `shielded()` (a
    checkpoint being written) a second signal waits until the block has finished, so a save is never cut
    in half.
    """

    def __init__(self, repeat_interrupts: bool = True) -> None:
        self.requested = False
        self.repeat_interrupts = repeat_interrupts
        self._shielded = False
        self._interrupt_pending = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.requested:
            self.requested = True
        elif self.repeat_interrupts:
            if self._shielded:
                self._interrupt_pending = True
            else:
                raise KeyboardInterrupt

    @contextlib.contextmanager
    def shielded(self) -> Iterator[None]:
        """Run the block to its end even if a second signal arrives; interrupt right after it if one did."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False
        if self._interrupt_pending:
            raise KeyboardInterrupt

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
