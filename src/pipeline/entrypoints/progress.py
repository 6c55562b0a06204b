"""A one-line live status on stderr: rewritten in place on a terminal, printed every few
seconds otherwise (so CI logs stay readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class StatusLine:
    """Throttled status output."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.5) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._interval = interval if self._tty else max(interval, 5.0)
        self._last = 0.0
        self._width = 0

    def update(self, text: str, *, force: bool = False) -> None:
        """Show `text` if the last update is old enough (or `force`)."""
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        if self._tty:
            padded = text.ljust(self._width)
            self._width = len(text)
            self._stream.write("\r" + padded)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self, text: str | None = None) -> None:
        """End the status line (optionally with a final text)."""
        if text is not None:
            self.update(text, force=True)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
