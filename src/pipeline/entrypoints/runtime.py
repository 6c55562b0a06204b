"""Process plumbing shared by the entrypoints: signals, settings errors, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import ValidationError

from pipeline.domain import PipelineError
from pipeline.entrypoints.logging import configure_logging
from pipeline.entrypoints.settings import Settings

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


def tune_gc_for_streaming() -> None:
    """Collect young objects less often. A worker allocates and frees a few objects per
    record (records, dicts, readings), nearly all freed by reference counting; with the default
    thresholds the cycle collector ran constantly and took a fifth of the worker's CPU. Objects
    alive after start-up are frozen out of future collections."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def _exit_now() -> None:
    sys.stderr.write("\nsecond interrupt: exiting without a clean shutdown\n")
    raise SystemExit(EXIT_INTERRUPTED)


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def run_command(prog: str, command: Command, args: argparse.Namespace) -> int:
    """Build the settings, configure logging and run `command`; map what goes wrong to an
    exit code and a message on stderr: invalid settings 2, a pipeline error 1, Ctrl-C 130."""
    try:
        settings = Settings()
    except ValidationError as error:
        sys.stderr.write(f"{prog}: error: invalid settings:\n{error}\n")
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(command(args, settings))
    except PipelineError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
