"""What the time-series sinks cost the sensors worker: `pipeline bench sensors` with the sinks
off and on (`PIPELINE_TIMESERIES__URL` = the stack's time-series server), alternated so that
the machine's drift hits both alike, printing each run's throughput, the medians and the
ratio of each pair.

    eval "$(scripts/stack env)"
    uv run python benchmarks/timeseries_overhead.py --pairs 3 --events 100000

A benchmark that prints figures, not a test."""

from __future__ import annotations

import argparse
import os
import sys

from sensor_bench_rounds import Variant, run_rounds  # a sibling script, not a package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help="off/on pairs (default 3)")
    parser.add_argument("--events", type=int, default=100_000, help="readings per run")
    parser.add_argument(
        "--url",
        default=os.environ.get("PIPELINE_STACK_TIMESERIES_URL"),
        help="the time-series server (default: $PIPELINE_STACK_TIMESERIES_URL)",
    )
    args = parser.parse_args()
    if not args.url:
        sys.exit('no time-series server: eval "$(scripts/stack env)" or pass --url')
    drop = ("PIPELINE_TIMESERIES__",)
    on = {"PIPELINE_TIMESERIES__URL": args.url, "PIPELINE_TIMESERIES__BUCKET": "bench"}
    variants = {"off": Variant(drop=drop), "on": Variant(env=on, drop=drop)}
    run_rounds(variants, rounds=args.pairs, events=args.events)


if __name__ == "__main__":
    main()
