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

With `Scoring`, a model scores every transaction too (`pipeline.jobs.payment_features`),
as the sensors' evaluation does: the first `train_share` of the stream runs through the job
with an untrained baseline, whose unflagged rows (and flagged ones up to the contamination)
are what each trainer fits a model on; then the whole stream runs through the job once per
model (the first part only builds each account's history) and only the rest is counted. A
model's flag names no pattern, so per pattern p it is scored as "flagged at all": TP = the
transactions of p it flagged, flagged = those + the normal transactions it flagged (other
patterns' transactions count for neither: the precision it would have if p alone were
injected). The rules are scored the same way on the same part — flagged by some rule — for
the comparison; the per-rule table above stays over the whole stream.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from pipeline.application.errors import ConfigurationError
from pipeline.application.generators.base import Generated
from pipeline.application.generators.payments import (
    FraudPattern,
    PaymentEvent,
    PaymentsConfig,
    generate_payments,
)
from pipeline.application.ports.model import ModelTrainer, ScoringModel
from pipeline.application.scoring import LiveModel, training_rows
from pipeline.domain.alerts import Alert, AlertKind
from pipeline.domain.fraud import FlaggedTransaction
from pipeline.domain.payments import AccountProfile, PaymentOutcome, Transaction
from pipeline.jobs.payment_features import anomaly_alert_id
from pipeline.jobs.payments import ALERTS, FLAGGED, PaymentsJobConfig, payments_job
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


def score_detector(
    truth: Mapping[str, Labelled], flagged: set[str], patterns: Iterable[str]
) -> list[RuleScore]:
    """A detector whose flags name no pattern, scored per pattern as "flagged at all"
    against that pattern and the normal transactions (see the module), then the row `any`."""
    false_alarms = sum(1 for tx, label in truth.items() if label.pattern is None and tx in flagged)
    rows: list[RuleScore] = []
    for pattern in patterns:
        episodes: dict[str, bool] = {}
        labelled = true_positives = 0
        for tx, label in truth.items():
            if label.pattern != pattern:
                continue
            hit = tx in flagged
            labelled += 1
            true_positives += hit
            if label.episode is not None:
                episodes[label.episode] = episodes.get(label.episode, False) or hit
        rows.append(
            RuleScore(
                rule=pattern,
                labelled=labelled,
                flagged=true_positives + false_alarms,
                true_positives=true_positives,
                episodes=len(episodes),
                episodes_found=sum(episodes.values()),
            )
        )
    return [*rows, _score(ANY, truth, {tx: {ANY} for tx in flagged})]


@dataclass(frozen=True, slots=True)
class DetectorScore:
    """A detector's (`rules`, `ml: forest`, …) figures on one pattern (or `any`)."""

    detector: str
    score: RuleScore


@dataclass(frozen=True, slots=True, kw_only=True)
class Scoring:
    """How models are fitted and compared with the rules (see the module)."""

    baseline: ScoringModel
    """The untrained model the training part runs with (its unflagged rows are the sample)."""
    trainers: Sequence[ModelTrainer]
    contamination: float = 0.04
    train_share: float = 0.3

    def __post_init__(self) -> None:
        if not self.trainers:
            raise ConfigurationError("scoring needs at least one trainer")
        if not 0.0 < self.contamination <= 0.5:
            raise ConfigurationError(f"contamination {self.contamination} must be in (0, 0.5]")
        if not 0.0 < self.train_share < 1.0:
            raise ConfigurationError(f"train share {self.train_share} must be in (0, 1)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """What `evaluate_payments` measured."""

    events: int
    transactions: int
    event_time: timedelta
    """How much event time the stream covered."""
    scores: list[RuleScore]
    comparison: list[DetectorScore] = field(default_factory=list)
    """With `Scoring`: the rules and each model on the part after training."""
    counted: int = 0
    """With `Scoring`: the transactions of the part after training."""


@dataclass(frozen=True, slots=True)
class JobRun:
    """What one run of the job flagged: the rules' reasons per transaction, the transactions
    the model (if any) flagged, and the model as the job held it."""

    flagged: dict[str, tuple[str, ...]]
    scored: set[str]
    live: LiveModel | None


def labelled_stream(
    *, events: int, seed: int, config: PaymentsConfig
) -> list[Generated[PaymentEvent]]:
    """The first `events` events of the payment stream `seed`, with their labels."""
    stream = generate_payments(seed=seed, start=EVALUATION_START, config=config)
    return list(itertools.islice(stream, events))


def truth_of(generated: Iterable[Generated[PaymentEvent]]) -> dict[str, Labelled]:
    """Every transaction's label."""
    return {
        g.event.transaction_id: (
            Labelled()
            if g.label is None
            else Labelled(pattern=str(g.label.kind), episode=g.label.anomaly_id)
        )
        for g in generated
        if isinstance(g.event, Transaction)
    }


def run_job(
    generated: Sequence[Generated[PaymentEvent]],
    job_config: PaymentsJobConfig,
    *,
    model: ScoringModel | None = None,
    batch: int = 5_000,
) -> JobRun:
    """Run `generated` through the payments job (scoring with `model`, if given) on the
    deterministic driver until every window and interval has closed."""
    live = None if model is None else LiveModel(model, sample_size=max(1, len(generated)))
    job_config = replace(job_config, scoring=live)
    job = payments_job(job_config)
    driver = TestDriver(job, partitions=4, now=EVALUATION_START)
    topic_of = {
        Transaction: job_config.transactions_topic,
        AccountProfile: job_config.accounts_topic,
        PaymentOutcome: job_config.outcomes_topic,
    }
    transaction_of = {}
    last = EVALUATION_START
    for count, g in enumerate(generated, start=1):
        event = g.event
        driver.send(topic_of[type(event)], event)
        if isinstance(event, Transaction):
            transaction_of[anomaly_alert_id(event)] = event.transaction_id
            last = event.timestamp
        if count % batch == 0:
            driver.run()
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
    scored = {
        transaction_of[alert.alert_id]
        for alert in driver.results(ALERTS.name)
        if isinstance(alert, Alert) and alert.kind is AlertKind.ANOMALY
    }
    return JobRun(flagged, scored, live)


def evaluate_payments(
    *,
    events: int,
    seed: int,
    config: PaymentsConfig,
    job_config: PaymentsJobConfig | None = None,
    scoring: Scoring | None = None,
    batch: int = 5_000,
) -> Evaluation:
    """Run `events` events of the payment stream `seed` through the payments job on the
    deterministic driver and score its rules against the labels (and, with `scoring`,
    fit models and compare them with the rules as the module says)."""
    job_config = job_config or PaymentsJobConfig()
    generated = labelled_stream(events=events, seed=seed, config=config)
    truth = truth_of(generated)
    patterns = [str(p) for p in FraudPattern]
    comparison: list[DetectorScore] = []
    counted = 0
    if scoring is None:
        run = run_job(generated, job_config, batch=batch)
    else:
        split = int(len(generated) * scoring.train_share)
        prefix = run_job(generated[:split], job_config, model=scoring.baseline, batch=batch)
        assert prefix.live is not None
        sample = training_rows(*prefix.live.sample(), scoring.contamination)
        test = truth_of(generated[split:])
        counted = len(test)
        models: list[DetectorScore] = []
        for trainer in scoring.trainers:
            model = trainer.fit(sample, version=f"{trainer.kind}-evaluation")
            run = run_job(generated, job_config, model=model, batch=batch)
            models.extend(
                DetectorScore(f"ml: {trainer.kind}", s)
                for s in score_detector(test, run.scored, patterns)
            )
        rules = score_detector(test, set(run.flagged), patterns)
        comparison = [*(DetectorScore("rules", s) for s in rules), *models]
    transactions = [g.event for g in generated if isinstance(g.event, Transaction)]
    last = transactions[-1].timestamp if transactions else EVALUATION_START
    return Evaluation(
        events=len(generated),
        transactions=len(truth),
        event_time=last - EVALUATION_START,
        scores=score_rules(truth, run.flagged, patterns),
        comparison=comparison,
        counted=counted,
    )
