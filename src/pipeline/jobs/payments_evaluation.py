"""How well the payments job's fraud rules find the generator's labelled fraud
(`pipeline evaluate payments`).

The generator's stream runs through the job on the deterministic driver (no broker, no
database); each rule is then scored against the pattern of the same name, per transaction:

    true positive   a transaction labelled with the pattern that the rule flagged
    false positive  a transaction the rule flagged that is not labelled with the pattern
                    (normal, or another pattern's)
    false negative  a transaction labelled with the pattern that the rule did not flag

precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean (None where
the denominator is 0). Episode recall is the share of the pattern's episodes (label
`anomaly_id`) with at least one transaction the rule flagged: a burst rule cannot know a
burst before it has seen enough of it, so it flags the rest of the burst, not its start.
The row `any` scores "flagged by some rule" against "labelled with some pattern".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.application.generators.payments import (
    FraudPattern,
    PaymentsConfig,
    generate_payments,
)
from pipeline.domain.fraud import FlaggedTransaction
from pipeline.domain.payments import AccountProfile, PaymentOutcome, Transaction
from pipeline.jobs.payments import FLAGGED, PaymentsJobConfig, payments_job
from pipeline.streams.testing import TestDriver

ANY = "any"
"""The row of `score_rules` for every rule and pattern together."""
EVALUATION_START = datetime(2026, 11, 29, 18, tzinfo=UTC)
"""Where the evaluated stream starts: evening in Europe, so that a run of a few hours of
event time covers its night (the night rule's hours)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleScore:
    """A rule's counts and rates against its pattern's labels."""

    rule: str
    labelled: int
    flagged: int
    true_positives: int
    episodes: int
    episodes_found: int

    @property
    def precision(self) -> float | None:
        """TP / flagged (None when nothing was flagged)."""
        return self.true_positives / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        """TP / labelled (None when nothing was labelled)."""
        return self.true_positives / self.labelled if self.labelled else None

    @property
    def f1(self) -> float | None:
        """The harmonic mean of precision and recall (None unless both are positive)."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p and r else None

    @property
    def episode_recall(self) -> float | None:
        """The share of the pattern's episodes with at least one transaction flagged."""
        return self.episodes_found / self.episodes if self.episodes else None


@dataclass(frozen=True, slots=True)
class Labelled:
    """A transaction's ground truth: its pattern and episode (None for a normal one)."""

    pattern: str | None = None
    episode: str | None = None


def score_rules(
    truth: Mapping[str, Labelled],
    flagged: Mapping[str, Iterable[str]],
    rules: Iterable[str],
) -> list[RuleScore]:
    """Each of `rules` scored against the pattern of its name, then the row `any`.
    `truth`: every transaction id's label; `flagged`: the reasons of each flagged one."""
    reasons = {tx: set(fired) for tx, fired in flagged.items()}
    return [*(_score(rule, truth, reasons) for rule in rules), _score(ANY, truth, reasons)]


def _score(
    rule: str,
    truth: Mapping[str, Labelled],
    reasons: Mapping[str, set[str]],
) -> RuleScore:
    is_any = rule == ANY
    labelled = flagged = true_positives = 0
    episodes: dict[str, bool] = {}
    for tx, label in truth.items():
        fired = reasons.get(tx, set())
        positive = bool(fired) if is_any else rule in fired
        relevant = label.pattern is not None if is_any else label.pattern == rule
        labelled += relevant
        flagged += positive
        true_positives += relevant and positive
        if relevant and label.episode is not None:
            episodes[label.episode] = episodes.get(label.episode, False) or positive
    return RuleScore(
        rule=rule,
        labelled=labelled,
        flagged=flagged,
        true_positives=true_positives,
        episodes=len(episodes),
        episodes_found=sum(episodes.values()),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """What `evaluate_payments` measured."""

    events: int
    transactions: int
    event_time: timedelta
    """How much event time the stream covered."""
    scores: list[RuleScore]


def evaluate_payments(
    *,
    events: int,
    seed: int,
    config: PaymentsConfig,
    job_config: PaymentsJobConfig | None = None,
    batch: int = 5_000,
) -> Evaluation:
    """Run `events` events of the payment stream `seed` through the payments job on the
    deterministic driver and score its rules against the labels."""
    job_config = job_config or PaymentsJobConfig()
    job = payments_job(job_config)
    driver = TestDriver(job, partitions=4, now=EVALUATION_START)
    topic_of = {
        Transaction: job_config.transactions_topic,
        AccountProfile: job_config.accounts_topic,
        PaymentOutcome: job_config.outcomes_topic,
    }
    truth: dict[str, Labelled] = {}
    last = EVALUATION_START
    stream = generate_payments(seed=seed, start=EVALUATION_START, config=config)
    for count, generated in enumerate(stream, start=1):
        event = generated.event
        driver.send(topic_of[type(event)], event)
        if isinstance(event, Transaction):
            label = generated.label
            truth[event.transaction_id] = (
                Labelled()
                if label is None
                else Labelled(pattern=str(label.kind), episode=label.anomaly_id)
            )
            last = event.timestamp
        if count % batch == 0:
            driver.run()
        if count >= events:
            break
    driver.run()
    # Let every window and interval close: the partitions go idle and their watermarks
    # follow the virtual clock past the last event.
    horizon = last + job_config.outcome_window + job_config.rules.lookback
    driver.set_time(max(driver.now, horizon + job_config.idle_timeout + job_config.grace))
    driver.advance(timedelta(seconds=1))
    flagged: dict[str, tuple[str, ...]] = {
        row.transaction_id: tuple(row.reasons)
        for row in driver.results(FLAGGED.name)
        if isinstance(row, FlaggedTransaction)
    }
    return Evaluation(
        events=min(events, count),
        transactions=len(truth),
        event_time=last - EVALUATION_START,
        scores=score_rules(truth, flagged, [str(p) for p in FraudPattern]),
    )
