"""What Prometheus metrics cost a worker: first the telemetry's own time per 10,000-record
batch (in this process), then `pipeline bench sensors` with metrics off and on
(`--metrics-port 0`), alternated so that the machine's drift hits both alike, printing each
run's throughput, the medians and the ratio of each pair.

    eval "$(scripts/stack env)"
    uv run python benchmarks/metrics_overhead.py --pairs 4 --events 100000

A benchmark that prints figures, not a test: the issue's bar is metrics on keeping at least
97% of the throughput with them off."""

from __future__ import annotations

import argparse
import time
import timeit

from sensor_bench_rounds import Variant, run_rounds  # a sibling script, not a package

from pipeline.adapters.telemetry.prometheus import PrometheusTelemetry
from pipeline.application.ports import Record, TopicPartition
from pipeline.application.runtime.report import BatchReport


def per_batch_ms(size: int = 10_000) -> float:
    """Milliseconds the Prometheus telemetry spends on one batch of `size` records (the
    calls the consumer loop makes per batch), best of five rounds."""
    now = int(time.time() * 1000)
    records = [
        Record(topic="readings", partition=i % 6, offset=i, key=b"k", value=b"v",
               timestamp_ms=now - i % 5_000)
        for i in range(size)
    ]  # fmt: skip
    report = BatchReport(
        records=size,
        written={"readings": size},
        next_offsets={TopicPartition("readings", p): size for p in range(6)},
        commit_seconds=0.2,
    )
    telemetry = PrometheusTelemetry().worker(job="sensors", forwarder=False)

    def batch() -> None:
        telemetry.batch_prepared(0.1)
        telemetry.batch_applied(0.2)
        telemetry.batch_committed(report, records)

    return min(timeit.repeat(batch, number=100, repeat=5)) / 100 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="off/on pairs (default 4)")
    parser.add_argument("--events", type=int, default=100_000, help="readings per run")
    args = parser.parse_args()
    print(f"telemetry per 10,000-record batch: {per_batch_ms():.2f} ms", flush=True)
    variants = {"off": Variant(), "on": Variant(args=("--metrics-port", "0"))}
    run_rounds(variants, rounds=args.pairs, events=args.events)


if __name__ == "__main__":
    main()
