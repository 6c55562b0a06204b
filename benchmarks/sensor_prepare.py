"""CPU cost per reading of the sensors job's `prepare`: a benchmark, not a test.

    uv run python -m benchmarks.sensor_prepare --readings 100000 --batch-size 10000

No services: readings from the sensor fleet's generator (ending now, so they pass the clock
checks) are Avro-encoded into records of `--partitions` partitions, in batches as the worker
polls them (runs of one partition). The timed part is what the worker does in CPU for each
batch before its transaction: `JobHandler.prepare` (decode, validate, alerts, the one-minute
window, state serialization) and the checkpoint plan the store derives from it. Prints µs per
reading (median of `--repeat` passes over fresh handlers), decoding with the compiled core
and with fastavro in alternate passes, and the machine's load average. With `--profile
FILE` one extra pass (the compiled core's where installed) runs under cProfile and its
statistics go to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import statistics
import time
import zlib
from collections.abc import Sequence

from pipeline.adapters.avro import reading_codec, reading_row_codec
from pipeline.adapters.checkpoint_plan import plan_checkpoint
from pipeline.adapters.clock import SystemClock
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.adapters.memory.checkpoint import InMemoryCheckpointStore
from pipeline.application.generators.production import planned_readings
from pipeline.application.generators.sensors import SensorFleetConfig
from pipeline.application.ports import Codec, Record, TopicPartition
from pipeline.application.runtime.handler import JobHandler
from pipeline.domain.sensor_columns import ReadingRow
from pipeline.domain.sensors import Reading
from pipeline.entrypoints.logging import configure_logging
from pipeline.entrypoints.runtime import tune_gc_for_streaming
from pipeline.jobs.sensors import SensorJobConfig, sensor_job

TOPIC = "sensor-readings"


async def batches(
    args: argparse.Namespace, clock: SystemClock, codec: Codec[Reading]
) -> list[list[Record]]:
    """The readings as the worker polls them: per batch, runs of one partition."""
    fleet = SensorFleetConfig(sensors=args.sensors)
    readings = planned_readings(seed=7, now=clock.now(), count=args.readings, rate=0, fleet=fleet)
    per_part: list[list[Record]] = [[] for _ in range(args.partitions)]
    for generated in readings:
        reading = generated.event
        key = reading.sensor_id.encode()
        part = zlib.crc32(key) % args.partitions
        records = per_part[part]
        value = await codec.encode(reading)
        records.append(
            Record(
                topic=TOPIC,
                partition=part,
                offset=len(records),
                key=key,
                value=value,
                timestamp_ms=0,
            )
        )
    out: list[list[Record]] = []
    share = max(1, args.batch_size // args.partitions)
    while any(per_part):
        batch: list[Record] = []
        for records in per_part:
            batch.extend(records[:share])
            del records[:share]
        out.append(batch)
    return out


async def one_pass(
    args: argparse.Namespace,
    clock: SystemClock,
    codec: Codec[ReadingRow],
    work: Sequence[list[Record]],
) -> float:
    """CPU seconds of preparing every batch on a fresh handler."""
    handler = JobHandler(
        job=sensor_job(SensorJobConfig(topic=TOPIC)),
        group_id="bench",
        codecs={TOPIC: codec},
        store=InMemoryCheckpointStore({}),
        log_=None,
        clock=clock,
        worker_id="bench",
    )
    await handler.resolve([TopicPartition(TOPIC, p) for p in range(args.partitions)])
    await handler.prepare(work[0][:1])  # the codec's schema lookup, once
    spent = 0.0
    for records in work:
        started = time.process_time()
        prepared = await handler.prepare(records)
        plan_checkpoint(prepared.checkpoint, {})
        spent += time.process_time() - started
    return spent


async def main(args: argparse.Namespace) -> None:
    configure_logging("WARNING")
    clock = SystemClock()
    registry = InMemorySchemaRegistry()
    work = await batches(args, clock, reading_codec(registry, TOPIC))
    # As the sensors job decodes: with the compiled core where installed, and with fastavro
    # (PIPELINE_WORKER__NATIVE_DECODE=false), passes alternated.
    codecs = {
        "native": reading_row_codec(registry, TOPIC),
        "fastavro": reading_row_codec(registry, TOPIC, native=False),
    }
    if not codecs["native"].native:
        print("  the compiled core is not installed: fastavro only")
        del codecs["native"]
    codec = next(iter(codecs.values()))
    tune_gc_for_streaming()  # as the worker does
    count = sum(len(b) for b in work)
    load = os.getloadavg()
    costs: dict[str, list[float]] = {name: [] for name in codecs}
    for _ in range(args.repeat):
        for name, each in codecs.items():
            costs[name].append(await one_pass(args, clock, each, work) / count * 1e6)
    print(
        f"sensors job prepare + checkpoint plan: {count:,} readings in {len(work)} batches, "
        f"{args.partitions} partitions, {args.sensors} sensors"
    )
    for name, spent in costs.items():
        print(
            f"  {name:>8}: µs per reading (CPU): median {statistics.median(spent):.2f}, "
            f"min {min(spent):.2f}, max {max(spent):.2f} over {args.repeat} passes"
        )
    print(f"  load average before: {load[0]:.2f} {load[1]:.2f}, after: {os.getloadavg()[0]:.2f}")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        await one_pass(args, clock, codec, work)
        profile.disable()
        profile.dump_stats(args.profile)
        print(f"  profile of one more pass: {args.profile}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of one more pass to this file")
    asyncio.run(main(parser.parse_args()))
