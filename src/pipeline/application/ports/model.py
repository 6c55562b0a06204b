"""Scoring models: what anomaly detection needs from a model and from where models are kept.

A model scores a whole batch of feature rows at once (a fitted forest scores a few hundred
rows a second one by one and a hundred thousand in batches): every row is a sequence of
floats in the order of the model's `features`. The application never sees the library
behind a model; adapters live in `pipeline.adapters.model`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Scored:
    """A batch's scores (higher is more anomalous) and decisions, one of each per row."""

    scores: Sequence[float]
    anomalous: Sequence[bool]


class ScoringModel(Protocol):
    """A fitted model that scores batches of feature rows."""

    @property
    def version(self) -> str:
        """The model's version (recorded on every alert it raises)."""
        ...

    @property
    def kind(self) -> str:
        """The adapter that made it (`forest`, `zscore`): how the store reloads it."""
        ...

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        """Score every row of a batch at once."""
        ...


class ModelTrainer(Protocol):
    """Fits a new model of one kind on a sample of feature rows."""

    @property
    def kind(self) -> str:
        """The kind of model it fits."""
        ...

    def fit(self, rows: Sequence[Sequence[float]], *, version: str) -> ScoringModel:
        """A model fitted on `rows` (CPU-bound: call it off the event loop)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """What the model store keeps beside an artifact."""

    version: str
    kind: str
    trained_at: datetime
    sample_size: int
    features: tuple[str, ...]
    contamination: float
    evaluation: Mapping[str, float] = field(default_factory=dict)
    """Scores on the held-out slice it was judged on (`false_alarm_rate`,
    `recall_on_flagged`, and the current model's as `current_…`)."""
    accepted: bool = True
    """False for a candidate refused as worse than the model it would have replaced."""
    digest: str = ""
    """SHA-256 of the artifact as the store wrote it (checked before every load)."""


class ModelStore(Protocol):
    """Versioned models: artifact and metadata, and which one is current."""

    async def save(self, model: ScoringModel, info: ModelInfo) -> ModelInfo:
        """Store `model` (its artifact and `info`); returns `info` with its digest."""
        ...

    async def list(self) -> Sequence[ModelInfo]:
        """Every stored model, oldest first."""
        ...

    async def info(self, version: str) -> ModelInfo:
        """The metadata of `version` (UnknownModel if absent)."""
        ...

    async def load(self, version: str) -> ScoringModel:
        """The model `version`, after checking its artifact's digest (TamperedArtifact)."""
        ...

    async def current(self) -> str | None:
        """The version workers load: the one promoted last, else the newest accepted."""
        ...

    async def promote(self, version: str) -> None:
        """Make `version` current (also a refused one, by an operator's decision)."""
        ...
