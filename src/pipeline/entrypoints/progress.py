"""A one-line live status on stderr, and the rates it shows.

In a terminal the line is rewritten in place and log lines are printed above it, each on its
own line (`StatusLine.logs_above`); otherwise it is printed every few seconds as a plain line,
so CI logs stay readable."""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import sys
import time
from collections.abc import Iterator
from typing import TextIO, cast

import structlog

_CLEAR_LINE = "\r\x1b[K"
"""Carriage return, then erase to the end of the line (ANSI)."""


class StatusLine:
    """Throttled status output."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.5) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._interval = interval if self._tty else max(interval, 5.0)
        self._last = 0.0
        self._shown = ""
        self._pending = ""

    @property
    def is_terminal(self) -> bool:
        """Whether the line is rewritten in place (its stream is a terminal)."""
        return self._tty

    def update(self, text: str, *, force: bool = False) -> None:
        """Show `text` if the last update is old enough (or `force`)."""
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        if self._tty:
            self._shown = text
            self._stream.write(_CLEAR_LINE + text)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def done(self, text: str | None = None) -> None:
        """End the status line (optionally with a final text)."""
        if text is not None:
            self.update(text, force=True)
        if self._tty and self._shown:
            self._stream.write("\n")
            self._stream.flush()
        self._shown = ""

    def print(self, text: str, file: TextIO | None = None) -> None:
        """Print the line `text` to `file` (default: the status line's stream) above the
        status line."""
        if file is None or file is self._stream:
            self.write_above(text + "\n")
            return
        if self._tty and self._shown:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
        file.write(text + "\n")
        file.flush()
        if self._tty and self._shown:
            self._stream.write(self._shown)
            self._stream.flush()

    def write_above(self, text: str) -> None:
        """Print `text` (log output) on lines of its own above the status line. Only whole
        lines are printed; the rest waits for its newline."""
        if not self._tty:
            self._stream.write(text)
            return
        self._pending += text
        if "\n" not in self._pending:
            return
        lines, _, self._pending = self._pending.rpartition("\n")
        self._stream.write(f"{_CLEAR_LINE}{lines}\n{self._shown}")
        self._stream.flush()

    @contextlib.contextmanager
    def logs_above(self) -> Iterator[None]:
        """While inside, structlog's and the standard library's log output on this status
        line's stream goes through `write_above`, so no log line breaks the status line."""
        above = _Above(self)
        handlers = [
            h
            for h in logging.getLogger().handlers
            if type(h) is logging.StreamHandler and h.stream is self._stream
        ]
        factory = structlog.get_config()["logger_factory"]
        for handler in handlers:
            handler.setStream(above)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, above)))
        try:
            yield
        finally:
            structlog.configure(logger_factory=factory)
            for handler in handlers:
                handler.setStream(self._stream)


class _Above(io.TextIOBase):
    """A text stream writing above a status line."""

    def __init__(self, status: StatusLine) -> None:
        self._status = status

    def write(self, text: str) -> int:
        self._status.write_above(text)
        return len(text)

    def isatty(self) -> bool:
        return self._status.is_terminal


class RateMeter:
    """Events per second over the last `window` seconds, from running totals sampled now and
    then. A worker counts whole batches, so a short window would often show 0 between two
    batches; over 10 s the figure is steady."""

    def __init__(self, window: float = 10.0) -> None:
        self._window = window
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, total: int, now: float | None = None) -> None:
        """Record that `total` events had been counted at `now` (default: monotonic time)."""
        now = time.monotonic() if now is None else now
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()

    def rate(self) -> float:
        """Events per second between the oldest sample in the window and the newest."""
        if len(self._samples) < 2:
            return 0.0
        (start, first), (end, last) = self._samples[0], self._samples[-1]
        return (last - first) / (end - start) if end > start else 0.0
