"""Scoring a stream with a model that retraining replaces while the stream runs.

`LiveModel` is what a job's scoring step holds: the current model (read once per batch, so
every row of a batch is scored by one model, and a swap takes effect between batches: no row
is lost or scored twice), and a bounded sample of the recent rows the model did not flag,
which retraining learns from. `Retrainer` runs beside the stream as an asyncio task whose
fitting and evaluating run in a worker thread: never in the poll loop, never blocking it."""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.application.ports.model import (
    ModelInfo,
    ModelStore,
    ModelTrainer,
    Scored,
    ScoringModel,
)

log = logging.getLogger(__name__)

Row = Sequence[float]


class LiveModel:
    """The model a scoring step uses now, and what the stream taught since it was fitted."""

    def __init__(
        self,
        model: ScoringModel,
        *,
        sample_size: int = 20_000,
        flagged_size: int = 2_000,
        on_scored: Callable[[float, int, str], None] | None = None,
    ) -> None:
        """`on_scored(seconds, rows, version)` is told of every batch scored (telemetry)."""
        self.model = model
        self._lock = threading.Lock()
        self._sample_size = sample_size
        # Whole scored batches, newest last, as long as their unflagged rows are among the
        # newest `sample_size`: a batch joins the sample in one append, not row by row.
        self._batches: deque[tuple[Sequence[Row], Sequence[bool], int]] = deque()
        self._unflagged = 0
        self._flagged: deque[Row] = deque(maxlen=flagged_size)
        self._on_scored = on_scored
        self.scored = 0
        """Rows scored since the process began."""

    def score(self, rows: Sequence[Row]) -> tuple[Scored, str]:
        """Score a batch with the current model; the rows it did not flag join the sample
        retraining learns from. Returns the scores and the version that made them."""
        model = self.model  # once per batch: a swap lands between batches
        started = time.perf_counter()
        scored = model.score(rows)
        seconds = time.perf_counter() - started
        anomalous = scored.anomalous
        # A flagged row is copied out of its batch (a few in a hundred), which then need not
        # be kept for it.
        flagged = [tuple(rows[i]) for i in itertools.compress(range(len(rows)), anomalous)]
        unflagged = len(rows) - len(flagged)
        with self._lock:
            self._flagged.extend(flagged)
            if unflagged:
                self._batches.append((rows, anomalous, unflagged))
                self._unflagged += unflagged
                while self._unflagged - self._batches[0][2] >= self._sample_size:
                    self._unflagged -= self._batches.popleft()[2]
            self.scored += len(rows)
        if self._on_scored is not None:
            self._on_scored(seconds, len(rows), model.version)
        return scored, model.version

    def sample(self) -> tuple[list[Row], list[Row]]:
        """Copies of the recent unflagged rows (oldest first) and of the recent flagged ones."""
        with self._lock:
            batches, flagged = list(self._batches), list(self._flagged)
        recent = [
            row
            for rows, anomalous, _ in batches
            for row in itertools.compress(rows, map(operator.not_, anomalous))
        ]
        return recent[-self._sample_size :], flagged

    def swap(self, model: ScoringModel) -> None:
        """Score the next batch with `model`."""
        with self._lock:
            self.model = model


def evaluate(
    model: ScoringModel, normal: Sequence[Row], flagged: Sequence[Row]
) -> dict[str, float]:
    """How `model` does on a held-out slice: the share of recent unflagged rows it flags
    (`false_alarm_rate`), and the share of the rows flagged lately it flags too
    (`recall_on_flagged`, 1 without any)."""
    false_alarms = sum(model.score(normal).anomalous) / len(normal) if normal else 0.0
    recall = sum(model.score(flagged).anomalous) / len(flagged) if flagged else 1.0
    return {"false_alarm_rate": false_alarms, "recall_on_flagged": recall}


def judge(
    candidate: Mapping[str, float], current: Mapping[str, float], policy: RetrainPolicy
) -> bool:
    """Whether a candidate may replace the current model: it raises no more false alarms on
    the held-out slice than the current model or its contamination allows (plus
    `tolerance`), and flags at least `min_recall` of the held-out rows flagged lately."""
    allowed = max(current["false_alarm_rate"], policy.contamination) + policy.tolerance
    return (
        candidate["false_alarm_rate"] <= allowed
        and candidate["recall_on_flagged"] >= policy.min_recall
    )


def training_rows(normal: Sequence[Row], flagged: Sequence[Row], contamination: float) -> list[Row]:
    """What a model is fitted on: the unflagged rows, and the newest flagged ones up to
    `contamination` of the whole. An Isolation Forest draws its splits between the least and
    the largest value of its sample, so a point beyond what it has seen looks no stranger
    than the sample's extremes: it must see some anomalies, in the proportion it is told."""
    cap = int(len(normal) * contamination / (1.0 - contamination)) if contamination < 1 else 0
    return [*normal, *(flagged[-cap:] if cap else ())]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrainPolicy:
    """When and on what retraining runs."""

    every_readings: int = 1_000_000
    """Retrain after this many readings were scored, or after `every` seconds, whichever
    comes first."""
    every: float = 600.0
    """Seconds: retrain at least this often (once enough rows are sampled)."""
    min_sample: int = 2_000
    holdout_share: float = 0.2
    """The newest share of the sample (of the unflagged rows and of the flagged ones), held
    out to judge the candidate on."""
    tolerance: float = 0.01
    """False alarms a candidate may raise beyond the current model's or its contamination."""
    min_recall: float = 0.5
    """Share of the held-out rows flagged lately a candidate must flag too."""
    contamination: float = 0.03


class Retrainer:
    """Fits, judges and stores new models beside a running stream."""

    def __init__(
        self,
        live: LiveModel,
        trainer: ModelTrainer,
        store: ModelStore,
        *,
        features: Sequence[str],
        policy: RetrainPolicy = RetrainPolicy(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live, self.trainer, self.store = live, trainer, store
        self.features = tuple(features)
        self.policy = policy
        self._clock = clock
        self._last = clock()
        self._seen = live.scored

    def due(self) -> bool:
        """Whether N readings or T seconds passed since the last attempt."""
        policy = self.policy
        return (
            self.live.scored - self._seen >= policy.every_readings
            or self._clock() - self._last >= policy.every
        )

    async def run(self, poll: float = 1.0) -> None:
        """Retrain whenever due, until cancelled."""
        while True:
            await asyncio.sleep(poll)
            if self.due():
                try:
                    await self.retrain()
                except Exception:
                    log.exception("retraining failed; the current model stays")

    async def retrain(self) -> ModelInfo | None:
        """One attempt: fit on the sample but its newest slice, judge candidate and current
        model on that slice, store the candidate, and swap it in unless it is worse. None
        when the sample is still too small."""
        self._last, self._seen = self._clock(), self.live.scored
        normal, flagged = self.live.sample()
        policy = self.policy
        if len(normal) < policy.min_sample:
            return None
        held = max(1, int(len(normal) * policy.holdout_share))
        held_flagged = int(len(flagged) * policy.holdout_share)
        train = training_rows(
            normal[:-held], flagged[: len(flagged) - held_flagged], policy.contamination
        )
        holdout, flagged = normal[-held:], flagged[len(flagged) - held_flagged :]
        trained_at = datetime.now(UTC)
        # Unique across workers retraining at the same second.
        version = f"{self.trainer.kind}-{trained_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        current = self.live.model
        candidate, mine, theirs = await asyncio.to_thread(
            self._fit_and_judge, train, holdout, flagged, version, current
        )
        accepted = judge(mine, theirs, policy)
        info = await self.store.save(
            candidate,
            ModelInfo(
                version=version,
                kind=candidate.kind,
                trained_at=trained_at,
                sample_size=len(train),
                features=self.features,
                contamination=policy.contamination,
                evaluation={
                    **mine,
                    **{f"current_{name}": value for name, value in theirs.items()},
                },
                accepted=accepted,
            ),
        )
        if accepted:
            await self.store.promote(version)
            self.live.swap(candidate)
            log.info("model %s replaces %s (%s)", version, current.version, mine)
        else:
            log.warning(
                "model %s refused: false alarms %.4f (current %s: %.4f), recall on the "
                "recently flagged %.4f",
                version, mine["false_alarm_rate"], current.version,
                theirs["false_alarm_rate"], mine["recall_on_flagged"],
            )  # fmt: skip
        return info

    def _fit_and_judge(
        self,
        train: list[Row],
        holdout: list[Row],
        flagged: list[Row],
        version: str,
        current: ScoringModel,
    ) -> tuple[ScoringModel, dict[str, float], dict[str, float]]:
        candidate = self.trainer.fit(train, version=version)
        return candidate, evaluate(candidate, holdout, flagged), evaluate(current, holdout, flagged)
