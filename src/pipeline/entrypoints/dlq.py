"""`pipeline dlq list|show|replay|purge`: inspect the dead letters stored in the database,
re-drive chosen records to their original topic, and delete what is handled.

Exit codes: 0 success (`list` also when nothing matches), 1 failure (message on stderr),
2 usage error, 3 `show`: no dead letter at that position.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from pipeline.application.ports import DeadLetter, DeadLetterFilter
from pipeline.entrypoints.arguments import kafka_missing
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.runtime import EXIT_OK, EXIT_USAGE
from pipeline.entrypoints.settings import Settings

EXIT_NOT_FOUND = 3
REPLAY_HEADER = "dlq.replay.of"
"""Header of a re-driven record: `topic:partition:offset` of the record it re-drives."""
_MESSAGE_WIDTH = 70


def _int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _time(text: str) -> datetime:
    """ISO 8601; a time without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _position(text: str) -> tuple[str, int, int]:
    """`TOPIC:PARTITION:OFFSET` (Kafka topic names cannot contain a colon)."""
    topic, _, rest = text.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not (topic and partition.isdigit() and rest.isdigit()):
        raise argparse.ArgumentTypeError(f"expected TOPIC:PARTITION:OFFSET, got {text!r}")
    return topic, int(partition), int(rest)


async def _open(settings: Settings) -> Pipeline:
    """The pipeline, once the database is known to have the `dead_letters` table."""
    return await bootstrap(settings, require_schema=True)


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    return DeadLetterFilter(
        topic=args.topic,
        partition=args.partition,
        error_class=args.error_class,
        since=args.since,
        until=args.until,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
    )


def _unfiltered(args: argparse.Namespace) -> bool:
    return _filter(args) == DeadLetterFilter() and not args.all


def _summary(letter: DeadLetter) -> dict[str, Any]:
    return {
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "error_class": letter.error_class,
        "message": letter.message,
        "attempts": letter.attempts,
        "first_failed_at": letter.first_failed_at.isoformat(),
        "last_failed_at": letter.last_failed_at.isoformat(),
        "worker_id": letter.worker_id,
        "group_id": letter.group_id,
    }


def _details(letter: DeadLetter) -> dict[str, Any]:
    return {
        **_summary(letter),
        "timestamp_ms": letter.timestamp_ms,
        "key": None if letter.key is None else letter.key.hex(),
        "value": None if letter.value is None else letter.value.hex(),
        "stack_trace": letter.stack_trace,
    }


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline dlq list`: one line per dead letter (or one JSON object per line)."""
    pipeline = await _open(settings)
    try:
        found = await pipeline.dead_letter_store().find_dead_letters(
            _filter(args), limit=args.limit
        )
    finally:
        await pipeline.aclose()
    if args.json:
        for letter in found:
            print(json.dumps(_summary(letter)))
    elif found:
        print("TOPIC\tPARTITION\tOFFSET\tERROR_CLASS\tLAST_FAILURE\tMESSAGE")
        for x in found:
            message = x.message.splitlines()[0] if x.message else ""
            if len(message) > _MESSAGE_WIDTH:
                message = message[: _MESSAGE_WIDTH - 1] + "…"
            failed = x.last_failed_at.isoformat(timespec="seconds")
            print(f"{x.topic}\t{x.partition}\t{x.offset}\t{x.error_class}\t{failed}\t{message}")
    capped = f" (the first {args.limit}: raise --limit)" if len(found) == args.limit else ""
    sys.stderr.write(f"{len(found)} dead letter(s){capped}\n")
    return EXIT_OK


async def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline dlq show TOPIC:PARTITION:OFFSET`: everything stored about one dead letter."""
    topic, partition, offset = args.position
    pipeline = await _open(settings)
    try:
        letter = await pipeline.dead_letter_store().dead_letter(topic, partition, offset)
    finally:
        await pipeline.aclose()
    if letter is None:
        sys.stderr.write(f"pipeline dlq show: no dead letter at {topic}:{partition}:{offset}\n")
        return EXIT_NOT_FOUND
    details = _details(letter)
    if args.json:
        print(json.dumps(details, indent=2))
        return EXIT_OK
    trace = details.pop("stack_trace")
    width = max(len(name) for name in details)
    for name, value in details.items():
        print(f"{name:<{width}}  {'(none)' if value is None else value}")
    if trace:
        print(f"\n{trace}")
    return EXIT_OK


async def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline dlq replay`: publish the chosen records again, unchanged (key, value, original
    headers), to their original topic, where the worker reads them like any new record."""

    if _unfiltered(args):
        sys.stderr.write("pipeline dlq replay: error: choose records with filters, or --all\n")
        return EXIT_USAGE
    if not args.dry_run and kafka_missing("dlq replay", settings):
        return EXIT_USAGE
    pipeline = await _open(settings)
    try:
        found = await pipeline.dead_letter_store().find_dead_letters(
            _filter(args), limit=args.limit
        )
        for x in found:
            verb = "would re-drive" if args.dry_run else "re-driving"
            print(f"{verb} {x.topic}:{x.partition}:{x.offset} ({x.error_class}) to {x.topic}")
            if args.dry_run:
                continue
            headers = [*x.headers, (REPLAY_HEADER, f"{x.topic}:{x.partition}:{x.offset}".encode())]
            await pipeline.log.publish(x.topic, x.key, x.value, headers)
        if found and not args.dry_run:
            await pipeline.log.flush()
    finally:
        await pipeline.aclose()
    done = "would re-drive" if args.dry_run else "re-drove"
    sys.stderr.write(f"{done} {len(found)} record(s)\n")
    return EXIT_OK


async def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline dlq purge`: delete the chosen dead letters from the database (the dead-letter
    topic keeps its records until its retention removes them)."""
    if _unfiltered(args):
        sys.stderr.write("pipeline dlq purge: error: choose records with filters, or --all\n")
        return EXIT_USAGE
    pipeline = await _open(settings)
    try:
        store = pipeline.dead_letter_store()
        if args.dry_run:
            count = len(await store.find_dead_letters(_filter(args), limit=2**31 - 1))
        else:
            count = await store.purge_dead_letters(_filter(args))
    finally:
        await pipeline.aclose()
    print(f"{'would purge' if args.dry_run else 'purged'} {count} dead letter(s)")
    return EXIT_OK


def _add_filters(parser: argparse.ArgumentParser, *, limit: int | None = 100) -> None:
    parser.add_argument("--topic", help="original topic")
    parser.add_argument("--partition", type=_int, help="original partition")
    parser.add_argument("--error-class", help="e.g. bad_magic_byte, reading_out_of_range")
    parser.add_argument("--since", type=_time, help="last failure at or after (ISO 8601, UTC)")
    parser.add_argument("--until", type=_time, help="last failure before (ISO 8601, UTC)")
    parser.add_argument("--from-offset", type=_int, help="original offset at or above")
    parser.add_argument("--to-offset", type=_int, help="original offset below")
    if limit is not None:
        parser.add_argument(
            "--limit", type=_int, default=limit, help=f"at most this many (default {limit})"
        )


def add_dlq_commands(commands: Any) -> None:
    """Add `dlq list|show|replay|purge` to the `pipeline` subcommands."""
    dlq = commands.add_parser("dlq", help="inspect, re-drive and purge dead letters")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list dead letters (stored in the database)")
    _add_filters(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=cmd_list)

    show = actions.add_parser("show", help="everything stored about one dead letter")
    show.add_argument("position", type=_position, help="TOPIC:PARTITION:OFFSET of the record")
    show.add_argument("--json", action="store_true", help="print it as one JSON object")
    show.set_defaults(run=cmd_show)

    replay = actions.add_parser("replay", help="re-drive dead letters to their original topic")
    _add_filters(replay, limit=10_000)
    replay.add_argument("--all", action="store_true", help="every dead letter (no filter)")
    replay.add_argument("--dry-run", action="store_true", help="show what would be sent")
    replay.set_defaults(run=cmd_replay)

    purge = actions.add_parser("purge", help="delete dead letters from the database")
    _add_filters(purge, limit=None)
    purge.add_argument("--all", action="store_true", help="every dead letter (no filter)")
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted")
    purge.set_defaults(run=cmd_purge)
