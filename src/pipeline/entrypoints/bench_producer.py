"""The producer of `pipeline bench sensors --rates`: one long-lived process for every phase.

A fresh idempotent librdkafka producer delivers nothing until the broker has given it a
producer id, and on this stack that takes about 0.5 s after it starts (librdkafka drops its
bootstrap connection once the metadata names the broker, finds no broker up for the id
request, and waits out its 500 ms retry timer) while every reading it queues meanwhile
already carries its `produce()` time. A producer started for each phase put that wait into
the phase's first half second of readings: the latency's tail. This process produces the
warm-up readings first, so the phases' readings go through a producer that is connected,
has its producer id and has registered the schema, as a long-running producer's do.

Run as `python -m pipeline.entrypoints.bench_producer --sensors N` with the stack's
environment (the readings topic included). It reads one command a line on standard input,
`COUNT RATE SEED`: it produces COUNT readings at RATE per second (0: as fast as possible)
from fleet SEED, waits until all are acknowledged (`produce_sensors` flushes) and answers
`done COUNT` on standard output. It ends at the end of its input."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.runtime import EXIT_OK, run_command, tune_gc_for_streaming
from pipeline.entrypoints.sensors import produce_sensors
from pipeline.entrypoints.settings import Settings

__all__ = ["serve"]


async def serve(
    pipeline: Pipeline,
    *,
    sensors: int,
    command: Callable[[], Awaitable[str]],
    answer: Callable[[str], None],
) -> None:
    """Produce what each line `command` returns asks for (`COUNT RATE SEED`) and `answer`
    `done COUNT` once those readings are acknowledged, until `command` returns "" (the end
    of the input). A malformed command raises ValueError: the bench that sent it is wrong."""
    while line := await command():
        count, rate, seed = line.split()
        sent = await produce_sensors(
            pipeline, count=int(count), rate=float(rate), seed=int(seed), sensors=sensors
        )
        answer(f"done {sent}")


async def _produce_commands(args: argparse.Namespace, settings: Settings) -> int:
    pipeline = await bootstrap(settings)
    tune_gc_for_streaming()

    def answer(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    try:
        await serve(
            pipeline,
            sensors=args.sensors,
            command=lambda: asyncio.to_thread(sys.stdin.readline),
            answer=answer,
        )
    finally:
        await pipeline.aclose()
    return EXIT_OK


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, required=True)
    raise SystemExit(run_command("bench producer", _produce_commands, parser.parse_args()))
