"""Checks of what a CLI command was given: argparse types for its options, and whether the
services it needs are configured. Shared by the command modules of `pipeline`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime

from pipeline.entrypoints.settings import Settings


class CommandParser(argparse.ArgumentParser):
    """The parser of a subcommand: it reports an unknown option itself, with its own usage
    (`pipeline demo --frob` shows `usage: pipeline demo …`), instead of leaving it to the
    top-level parser, which would answer with the usage of `pipeline`."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as argparse does; arguments left over are this command's usage error."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def integer(text: str) -> int:
    """argparse type: any integer."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def number(text: str) -> float:
    """argparse type: any number."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def epoch_millis(text: str) -> int:
    """argparse type: an ISO 8601 time with a time zone, as epoch milliseconds."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-29T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add Z or +00:00")
    return int(moment.timestamp() * 1000)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer > 0."""
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def port(text: str) -> int:
    """argparse type: a TCP port, 0 meaning any free one."""
    value = integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 0 and 65535, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = number(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_numbers(text: str) -> list[float]:
    """argparse type: comma-separated finite numbers > 0, e.g. `5000,10000,20000`."""
    values = [non_negative_float(part.strip()) for part in text.split(",")]
    if not values or any(v == 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be numbers > 0 separated by commas, got {text}")
    return values


def fraction(text: str) -> float:
    """argparse type: a number between 0 and 1."""
    value = number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def kafka_missing(command: str, settings: Settings) -> bool:
    """True (after saying so on stderr) when `command` needs Kafka and none is configured:
    the in-memory log would take the records and lose them with the process."""
    if settings.kafka.bootstrap_servers is not None:
        return False
    sys.stderr.write(
        f"pipeline {command}: error: no Kafka configured. Set PIPELINE_KAFKA__BOOTSTRAP_SERVERS "
        '(eval "$(scripts/stack env)"); `pipeline demo` runs without services.\n'
    )
    return True
