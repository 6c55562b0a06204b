"""Precision and recall of the social job's burst detector against the generator's labelled
hashtag bursts (not a test: prints the figures).

    uv run python benchmarks/social_bursts.py --hours 12 --rate 40 --bursts-per-day 96 --seed 1
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from pipeline.application.generators.social import SocialConfig
from pipeline.entrypoints.social_evaluation import evaluate_bursts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rate", type=float, default=40.0, help="generated events/s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bursts-per-day", type=float, default=24.0)
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate_bursts(
        seed=args.seed,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        hours=args.hours,
        social=SocialConfig(events_per_second=args.rate, bursts_per_day=args.bursts_per_day),
    )
    print(
        f"{args.hours:g} h at {args.rate:g} events/s, {args.bursts_per_day:g} bursts/day, "
        f"seed {args.seed}: "
        f"bursts {result.bursts}, found {result.found} (recall {result.recall:.2f}; "
        f"of tags known a baseline before: {result.known_found}/{result.known_bursts}); "
        f"alerts {result.alerts}, right {result.right} (precision {result.precision:.2f}); "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
