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
import sys
import time
import timeit
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from sensor_bench_rounds import Variant, run_rounds  # a sibling script, not a package

from pipeline.adapters.telemetry.propagation import with_trace_context
from pipeline.adapters.telemetry.tracing import OtelTracing
from pipeline.application.ports import Record
from pipeline.application.ports.tracing import WorkerTracing
from pipeline.application.runtime.report import BatchReport
from pipeline.application.tracing import NULL_WORKER_TRACING

MODES = {"off": None, "1%": "0.01", "100%": "1.0"}


class Discard(SpanExporter):
    """Spans ended and dropped: the SDK's work without an exporter's."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""


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
    drop = ("PIPELINE_TRACING__",)
    variants = {
        name: Variant(drop=drop)
        if ratio is None
        else Variant(
            env={
                "PIPELINE_TRACING__ENDPOINT": args.endpoint,
                "PIPELINE_TRACING__SAMPLE_RATIO": ratio,
                "PIPELINE_TRACING__SERVICE_NAME": "pipeline-bench",
            },
            drop=drop,
        )
        for name, ratio in MODES.items()
    }
    run_rounds(variants, rounds=args.rounds, events=args.events)


if __name__ == "__main__":
    main()
