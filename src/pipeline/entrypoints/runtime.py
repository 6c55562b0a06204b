"""Process plumbing shared by the entrypoints: signals, settings errors, exit codes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import typing
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from pipeline.application.errors import TransientError
from pipeline.domain import PipelineError
from pipeline.entrypoints.logging import configure_logging
from pipeline.entrypoints.settings import Settings

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69
"""A service the command needs (broker, database, registry) could not be reached: trying
again later may succeed (sysexits.h's EX_UNAVAILABLE)."""
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
    """Collect young objects less often, and turn the cycle collector on (see
    `collector_off_while_starting`). A worker allocates and frees a few objects per record
    (records, dicts, readings), nearly all freed by reference counting; with the default
    thresholds the cycle collector ran constantly and took a fifth of the worker's CPU. Objects
    alive after start-up are frozen out of future collections (not collected first: among a
    started worker's ~200,000 objects a collection found ~1,600 garbage ones, for 0.05–0.1 s
    of CPU)."""
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    gc.enable()


@contextlib.contextmanager
def collector_off_while_starting() -> Iterator[None]:
    """The cycle collector off from here until `tune_gc_for_streaming` (and again on, however
    the block ends). A worker's start creates ~200,000 objects that live as long as it does
    (modules, classes, settings, clients); collecting among them took 0.07–0.08 s of the
    0.45 s of CPU from its settings to its first poll, and found next to nothing."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _exit_now() -> None:
    sys.stderr.write("\nsecond interrupt: exiting without a clean shutdown\n")
    raise SystemExit(EXIT_INTERRUPTED)


Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


ENV_PREFIX = "PIPELINE_"


def settings_problems(error: ValidationError | SettingsError) -> list[str]:
    """One line per invalid setting, naming its environment variable (never its value,
    which may be a secret)."""
    if isinstance(error, ValidationError):
        return [
            f"{_variable(problem['loc'])} ({'.'.join(map(str, problem['loc']))}): "
            + problem["msg"].removeprefix("Value error, ")
            for problem in error.errors()
        ]
    given = {name.upper(): value for name, value in os.environ.items()}
    bad_json = []
    for name, _ in _json_variables(Settings, ENV_PREFIX):
        if name in given:
            try:
                json.loads(given[name])
            except ValueError as exc:
                bad_json.append(f"{name} is not valid JSON ({exc})")
    return bad_json or [f"{error}: {error.__cause__ or ''}"]


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable of the setting at `loc` (a list's or dict's own variable
    for what is inside it)."""
    containers = {name for name, section in _json_variables(Settings, ENV_PREFIX) if not section}
    variable = ENV_PREFIX.rstrip("_")
    for part in loc:
        variable = f"{variable}{'_' if variable.endswith('PIPELINE') else '__'}{part}".upper()
        if variable in containers:
            break
    return variable


def _json_variables(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, bool]]:
    """The environment variables whose values pydantic-settings reads as JSON, each with
    whether it is a whole section (whose fields have variables of their own)."""
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield variable, True
            yield from _json_variables(annotation, f"{variable}__")
        elif typing.get_origin(annotation) in (dict, list):
            yield variable, False


def run_command(prog: str, command: Command, args: argparse.Namespace) -> int:
    """Build the settings, configure logging and run `command`; map what goes wrong to an
    exit code and a message on stderr: invalid settings 2, a service out of reach 69,
    another pipeline error 1, Ctrl-C 130."""
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as error:
        for problem in settings_problems(error):
            sys.stderr.write(f"{prog}: error: invalid settings: {problem}\n")
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(command(args, settings))
    except TransientError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        return EXIT_UNAVAILABLE
    except PipelineError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
