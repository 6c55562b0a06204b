"""What tracing costs a worker: first the tracing's own time per 10,000-record batch (in this
process: off, and on with 1% and 100% of the records carrying a sampled trace context), then
`pipeline bench sensors` with tracing off, at 1% and at 100% sampling (producer and worker
exporting to the stack's Jaeger), in turn and in a rotating order so that the machine's drift
hits all alike, printing each run's throughput and the ratio of each to the run without.

    eval "$(scripts/stack env)"
    uv run python benchmarks/tracing_overhead.py --rounds 3 --events 100000

A benchmark that prints figures, not a test: the bar is tracing at 1% costing under 5% of
the throughput, and tracing off costing nothing per record."""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from pipeline.adapters.telemetry.propagation import with_trace_context
from pipeline.adapters.telemetry.tracing import OtelTracing
from pipeline.application.ports import Record
from pipeline.application.ports.tracing import WorkerTracing
from pipeline.application.runtime.report import BatchReport
from pipeline.application.tracing import NULL_WORKER_TRACING

THROUGHPUT = re.compile(r"throughput: ([\d,]+) readings/s through the worker")
PER_CPU = re.compile(r"([\d,]+) readings per CPU second")
MODES = {"off": None, "1%": "0.01", "100%": "1.0"}


class Discard(SpanExporter):
    """Spans ended and dropped: the SDK's work without an exporter's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


def bench(events: int, ratio: str | None, endpoint: str) -> tuple[float, float]:
    """One `pipeline bench sensors` run: the worker's readings per second of wall-clock time
    and per second of its process's CPU time."""
    command = [sys.executable, "-m", "pipeline.entrypoints.cli", "bench", "sensors"]
    command += ["--events", str(events)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_TRACING__")}
    env["PIPELINE_LOG_LEVEL"] = "WARNING"
    if ratio is not None:
        env |= {"PIPELINE_TRACING__ENDPOINT": endpoint, "PIPELINE_TRACING__SAMPLE_RATIO": ratio}
        env["PIPELINE_TRACING__SERVICE_NAME"] = "pipeline-bench"
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall, cpu = THROUGHPUT.search(done.stdout), PER_CPU.search(done.stdout)
    if done.returncode != 0 or wall is None or cpu is None:
        sys.exit(f"pipeline bench failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(wall[1].replace(",", "")), float(cpu[1].replace(",", ""))


def per_batch_ms(tracing: WorkerTracing, traced_share: float, size: int = 10_000) -> float:
    """CPU milliseconds `tracing` spends on one batch of `size` records of which
    `traced_share` carry a sampled trace context (the calls the consumer loop makes), best
    of five."""
    producer = OtelTracing(TracerProvider())
    with producer.span("produce") as span:
        context = span.get_span_context()  # type: ignore[attr-defined]
    headers = with_trace_context((), context)
    every = max(1, round(1 / traced_share)) if traced_share else size + 1
    now = int(time.time() * 1000)
    records = [
        Record(topic="readings", partition=i % 6, offset=i, key=b"k", value=b"v",
               timestamp_ms=now, headers=headers if i % every == 0 else ())
        for i in range(size)
    ]  # fmt: skip
    report = BatchReport(records=size, written={"readings": size})

    def batch() -> None:
        trace = tracing.batch(records)
        with trace.current():
            pass
        with trace.current():
            pass
        trace.end(report)

    # CPU time, not wall-clock time: on a shared machine the latter measures the neighbours.
    timings = timeit.repeat(batch, number=20, repeat=5, timer=time.process_time)
    return min(timings) / 20 * 1000


def in_process() -> None:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.01)))
    provider.add_span_processor(SimpleSpanProcessor(Discard()))
    on = OtelTracing(provider).worker(job="sensors", group_id="bench", topics=["readings"])
    print("tracing's own CPU time per 10,000-record batch (span kept, export left out):")
    print(f"  off: {per_batch_ms(NULL_WORKER_TRACING, 0.01) * 1000:.1f} µs")
    for share in (0.01, 1.0):
        print(f"  on, {share:.0%} of the records traced: {per_batch_ms(on, share):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of off/1%%/100%%")
    parser.add_argument("--events", type=int, default=100_000, help="readings per run")
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("PIPELINE_STACK_JAEGER_OTLP_URL"),
        help="OTLP/HTTP endpoint (default: the stack's Jaeger, $PIPELINE_STACK_JAEGER_OTLP_URL)",
    )
    parser.add_argument("--in-process-only", action="store_true", help="skip the runs")
    args = parser.parse_args()
    in_process()
    if args.in_process_only:
        return
    if not args.endpoint:
        sys.exit('no OTLP endpoint: eval "$(scripts/stack env)" or give --endpoint')
    names = list(MODES)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        order = names[round_ % 3 :] + names[: round_ % 3]  # each mode first once in three
        for name in order:
            runs[name].append(bench(args.events, MODES[name], args.endpoint))
        load1, load5, _ = os.getloadavg()
        off_wall, off_cpu = runs["off"][-1]
        figures = ", ".join(
            f"{name} {wall:,.0f}/s ({wall / off_wall:.3f}), {cpu:,.0f}/CPU s ({cpu / off_cpu:.3f})"
            for name in names
            for wall, cpu in [runs[name][-1]]
        )
        print(f"round {round_ + 1} ({' → '.join(order)}): {figures}; load {load1:.1f} {load5:.1f}")
    print(f"{args.rounds} rounds of {args.events:,} readings, {os.cpu_count()} cores")
    for index, unit in enumerate(("readings/s", "readings per CPU second")):
        off = [run[index] for run in runs["off"]]
        for name in names[1:]:
            on = [run[index] for run in runs[name]]
            ratios = [b / a for a, b in zip(off, on, strict=True)]
            print(
                f"{unit}, {name}/off per round: median {statistics.median(ratios):.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}); medians off "
                f"{statistics.median(off):,.0f}, {name} {statistics.median(on):,.0f}"
            )


if __name__ == "__main__":
    main()
