"""`pipeline evaluate payments`: the payments job's fraud rules scored against the payment
generator's labels (`pipeline.jobs.payments_evaluation`), as a table on stdout."""

from __future__ import annotations

import argparse
import time

from pipeline.application.generators.payments import PaymentsConfig
from pipeline.entrypoints.jobs import payments_config
from pipeline.entrypoints.runtime import EXIT_OK
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.payments_evaluation import RuleScore, evaluate_payments


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def score_table(scores: list[RuleScore]) -> str:
    """The scores as a Markdown table (what the README keeps)."""
    lines = [
        "| rule | labelled | flagged | true pos. | precision | recall | F1 | episodes found |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {s.rule} | {s.labelled:,} | {s.flagged:,} | {s.true_positives:,} | "
        f"{_rate(s.precision)} | {_rate(s.recall)} | {_rate(s.f1)} | "
        f"{s.episodes_found}/{s.episodes} |"
        for s in scores
    )
    return "\n".join(lines)


async def run_evaluate_payments(args: argparse.Namespace, settings: Settings) -> int:
    """Run the generator's stream through the payments job in memory and print the scores."""
    config = PaymentsConfig(events_per_second=args.rate, fraud_rate=args.fraud_rate)
    started = time.perf_counter()
    evaluation = evaluate_payments(
        events=args.events, seed=args.seed, config=config, job_config=payments_config(settings)
    )
    elapsed = time.perf_counter() - started
    print(
        f"payments: {evaluation.events:,} events ({evaluation.transactions:,} transactions, "
        f"{evaluation.event_time} of event time), seed {args.seed}, {args.rate:g} events/s, "
        f"fraud rate {args.fraud_rate:g}; {elapsed:.1f} s"
    )
    print(score_table(evaluation.scores))
    return EXIT_OK
