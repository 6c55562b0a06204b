"""The z-score model: a reading is anomalous when its deviation from its sensor's rolling
mean, in units of the sensor's rolling stddev (the `zscore` feature, kept per sensor in the
job's state), exceeds a threshold. Tiny, exact, pure Python: the embedded default and the
baseline the forest is measured against."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.application.errors import ModelError
from pipeline.application.ports.model import Scored

ZSCORE = "zscore"
MIN_THRESHOLD = 4.0
"""Deviations below this many stddevs are never flagged, whatever the training sample."""


@dataclass(frozen=True, slots=True)
class ZScoreModel:
    """Flags rows whose |zscore| feature exceeds `threshold`."""

    version: str
    column: int
    """Where the `zscore` feature is in a row."""
    threshold: float = MIN_THRESHOLD
    kind: str = "zscore"

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        """|zscore| of every row; anomalous beyond the threshold."""
        column, threshold = self.column, self.threshold
        scores = [abs(float(row[column])) for row in rows]
        return Scored(scores=scores, anomalous=[s > threshold for s in scores])

    def artifact(self) -> bytes:
        """The model as JSON (nothing executable)."""
        return json.dumps({"column": self.column, "threshold": self.threshold}).encode()

    @classmethod
    def from_artifact(cls, data: bytes, version: str) -> ZScoreModel:
        """The model `artifact` wrote."""
        try:
            fields = json.loads(data)
            return cls(version, int(fields["column"]), float(fields["threshold"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ModelError(f"model {version}: not a z-score artifact ({error})") from error


@dataclass(frozen=True, slots=True)
class ZScoreTrainer:
    """Fits the threshold: the (1 − contamination) quantile of |zscore| in the sample, never
    below `MIN_THRESHOLD`."""

    features: tuple[str, ...]
    contamination: float = 0.03
    kind: str = "zscore"

    def fit(self, rows: Sequence[Sequence[float]], *, version: str) -> ZScoreModel:
        """A z-score model fitted on `rows`."""
        column = self.features.index(ZSCORE)
        if not rows:
            return ZScoreModel(version, column)
        ordered = sorted(abs(float(row[column])) for row in rows)
        at = min(len(ordered) - 1, math.floor(len(ordered) * (1.0 - self.contamination)))
        return ZScoreModel(version, column, max(MIN_THRESHOLD, ordered[at]))
