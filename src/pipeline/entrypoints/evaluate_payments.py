"""`pipeline evaluate payments`: the payments job's fraud rules, and scoring models fitted on
the start of the stream, scored against the payment generator's labels
(`pipeline.jobs.payments_evaluation`), as tables on stdout."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from pipeline.adapters.model import TRAINERS, ZScoreModel
from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.payments import PaymentsConfig
from pipeline.application.ports.model import ModelTrainer
from pipeline.entrypoints.jobs import payments_config
from pipeline.entrypoints.models import payments_trainer
from pipeline.entrypoints.runtime import EXIT_OK
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.payment_features import PAYMENT_FEATURES
from pipeline.jobs.payments_evaluation import (
    DetectorScore,
    RuleScore,
    Scoring,
    evaluate_payments,
)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _cells(s: RuleScore) -> str:
    return (
        f"{s.labelled:,} | {s.flagged:,} | {s.true_positives:,} | {_rate(s.precision)} | "
        f"{_rate(s.recall)} | {_rate(s.f1)} | {s.episodes_found}/{s.episodes} |"
    )


def score_table(scores: list[RuleScore]) -> str:
    """The rules' scores as a Markdown table (what the README keeps)."""
    lines = [
        "| rule | labelled | flagged | true pos. | precision | recall | F1 | episodes found |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(f"| {s.rule} | {_cells(s)}" for s in scores)
    return "\n".join(lines)


def comparison_table(rows: list[DetectorScore]) -> str:
    """The rules and the models per pattern, as a Markdown table."""
    lines = [
        "| detector | pattern | labelled | flagged | true pos. | precision | recall | F1 "
        "| episodes found |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(f"| {r.detector} | {r.score.rule} | {_cells(r.score)}" for r in rows)
    return "\n".join(lines)


def trainers(models: str, contamination: float) -> list[ModelTrainer]:
    """The trainers `--models` names (none for 'none'), over the payment features (the
    forest on `FOREST_FEATURES` of them)."""
    kinds = [] if models.strip() == "none" else [m.strip() for m in models.split(",")]
    unknown = sorted(set(kinds) - set(TRAINERS))
    if unknown:
        raise ConfigurationError(
            f"--models {models!r}: expected some of {', '.join(TRAINERS)}, or none"
        )
    return [payments_trainer(kind, contamination) for kind in kinds]


def _scoring(fitting: Sequence[ModelTrainer], contamination: float) -> Scoring | None:
    if not fitting:
        return None
    baseline = ZScoreModel("zscore-default", PAYMENT_FEATURES.index("zscore"))
    return Scoring(baseline=baseline, trainers=fitting, contamination=contamination)


async def run_evaluate_payments(args: argparse.Namespace, settings: Settings) -> int:
    """Run the generator's stream through the payments job in memory and print the scores."""
    config = PaymentsConfig(events_per_second=args.rate, fraud_rate=args.fraud_rate)
    scoring = _scoring(trainers(args.models, args.contamination), args.contamination)
    started = time.perf_counter()
    evaluation = evaluate_payments(
        events=args.events,
        seed=args.seed,
        config=config,
        job_config=payments_config(settings),
        scoring=scoring,
    )
    elapsed = time.perf_counter() - started
    print(
        f"payments: {evaluation.events:,} events ({evaluation.transactions:,} transactions, "
        f"{evaluation.event_time} of event time), seed {args.seed}, {args.rate:g} events/s, "
        f"fraud rate {args.fraud_rate:g}; {elapsed:.1f} s"
    )
    print(score_table(evaluation.scores))
    if scoring is not None:
        print(
            f"\nrules and models on the {evaluation.counted:,} transactions after the first "
            f"{scoring.train_share:.0%} of the stream (models fitted on it, contamination "
            f"{scoring.contamination:g}); per pattern, flagged = its transactions flagged + "
            "normal ones flagged:"
        )
        print(comparison_table(evaluation.comparison))
    return EXIT_OK
