"""Process plumbing shared by the entrypoints: signals, settings errors, exit codes."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def install_stop_handlers(stop: asyncio.Event, on_second: Callable[[], None] | None = None) -> None:
    """SIGTERM and SIGINT set `stop` (finish the batch, commit, close); a second signal calls
    `on_second` (default: exit at once with 130)."""
    loop = asyncio.get_running_loop()

    def handle() -> None:
        if stop.is_set():
            (on_second or _exit_now)()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handle)


def _exit_now() -> None:
    sys.stderr.write("\nsecond interrupt: exiting without a clean shutdown\n")
    raise SystemExit(EXIT_INTERRUPTED)
