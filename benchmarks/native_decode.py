"""CPU cost per reading of decoding sensor readings, fastavro against the compiled core: a
benchmark, not a test.

    uv run python -m benchmarks.native_decode --readings 20000 --repeat 5

No services: readings from the sensor fleet's generator, Avro-encoded in the wire format.
Two levels, each timed with fastavro and with the compiled core in alternate passes: the
bare decode of each payload's body (fastavro's `schemaless_reader` per payload, against
`RecordDecoder.decode_many` over the batch), and the sensors codec's `decode_many` (wire
header, errors per slot, `ReadingRow`s). Prints µs per reading (CPU, and wall beside it:
median of `--repeat` passes) and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import time
from collections.abc import Callable

import fastavro
from pipeline_native import RecordDecoder

from pipeline.adapters.avro import load_schema, reading_codec, reading_row_codec
from pipeline.adapters.avro.schemas import SENSOR_READING
from pipeline.adapters.clock import SystemClock
from pipeline.adapters.memory import InMemorySchemaRegistry
from pipeline.application.generators.production import planned_readings
from pipeline.application.generators.sensors import SensorFleetConfig

TOPIC = "sensor-readings"


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """CPU and wall seconds of one call of `work`."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def main(args: argparse.Namespace) -> None:
    loop = asyncio.new_event_loop()
    registry = InMemorySchemaRegistry()
    fleet = SensorFleetConfig(sensors=args.sensors)
    generated = planned_readings(
        seed=7, now=SystemClock().now(), count=args.readings, rate=0, fleet=fleet
    )
    payloads = loop.run_until_complete(
        reading_codec(registry, TOPIC).encode_many(g.event for g in generated)
    )
    header = payloads[0][:5]

    native_codec = reading_row_codec(registry, TOPIC)
    fastavro_codec = reading_row_codec(registry, TOPIC, native=False)
    if not native_codec.native:
        raise SystemExit("the compiled core does not read the readings' schema")
    decoder = RecordDecoder(load_schema(SENSOR_READING))
    schema = fastavro.parse_schema(json.loads(load_schema(SENSOR_READING)))
    read = fastavro.schemaless_reader

    def bare_fastavro() -> None:
        for payload in payloads:
            body = io.BytesIO(payload)
            body.seek(5)
            read(body, schema, None)

    def bare_native() -> None:
        decoder.decode_many(payloads, [header])

    def codec_fastavro() -> None:
        loop.run_until_complete(fastavro_codec.decode_many(payloads))

    def codec_native() -> None:
        loop.run_until_complete(native_codec.decode_many(payloads))

    codec_fastavro()  # each codec learns the schema id once
    codec_native()
    cases = {
        "bare decode, fastavro": bare_fastavro,
        "bare decode, compiled core": bare_native,
        "sensors codec, fastavro": codec_fastavro,
        "sensors codec, compiled core": codec_native,
    }
    load = os.getloadavg()
    spent: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.repeat):
        for name, work in cases.items():
            spent[name].append(timed(work))
    print(f"decoding {len(payloads):,} sensor readings, {args.sensors} sensors")
    for name, times in spent.items():
        cpu = statistics.median(t[0] for t in times) / len(payloads) * 1e6
        wall = statistics.median(t[1] for t in times) / len(payloads) * 1e6
        print(f"  {name:<29} µs per reading: CPU {cpu:5.2f}, wall {wall:5.2f}")
    print(f"  load average before: {load[0]:.2f} {load[1]:.2f}, after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20_000)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    main(parser.parse_args())
