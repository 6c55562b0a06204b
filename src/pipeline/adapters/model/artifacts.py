"""Models to bytes and back, per kind, and the trainer of each kind. The forest's modules
(scikit-learn, skops) are imported only when a forest is fitted or loaded."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pipeline.adapters.model.zscore import ZScoreModel, ZScoreTrainer
from pipeline.application.errors import ConfigurationError, ModelError, TamperedArtifact
from pipeline.application.ports.model import ModelInfo, ModelTrainer, ScoringModel

TRAINERS = ("forest", "zscore")
"""The kinds of model this installation fits."""
_NAMESPACE = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def checked_namespace(namespace: str) -> str:
    """`namespace` if it can name a model family in every store (a directory, a column
    value): lower-case letters, digits, `_` and `-`, starting with a letter."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ConfigurationError(
            f"model namespace {namespace!r}: expected lower-case letters, digits, _ or -, "
            "starting with a letter"
        )
    return namespace


def trainer_for(kind: str, *, features: Sequence[str], contamination: float) -> ModelTrainer:
    """The trainer of `kind` (`forest`: scikit-learn's Isolation Forest; `zscore`)."""
    if kind == "zscore":
        return ZScoreTrainer(tuple(features), contamination)
    if kind == "forest":
        from pipeline.adapters.model.forest import (  # noqa: PLC0415 - optional
            FOREST_FEATURES,
            ForestTrainer,
        )

        missing = sorted(set(FOREST_FEATURES) - set(features))
        if missing:
            raise ConfigurationError(f"a forest needs the features {missing}")
        columns = tuple(list(features).index(name) for name in FOREST_FEATURES)
        return ForestTrainer(columns, contamination)
    raise ConfigurationError(f"unknown model kind {kind!r}; known: {', '.join(TRAINERS)}")


def digest(data: bytes) -> str:
    """The SHA-256 the store records for an artifact."""
    return hashlib.sha256(data).hexdigest()


def artifact_of(model: ScoringModel) -> bytes:
    """`model` serialized in its kind's safe format (JSON, skops)."""
    artifact = getattr(model, "artifact", None)
    if artifact is None:
        raise ModelError(f"a {model.kind} model cannot be stored")
    data = artifact()
    assert isinstance(data, bytes)
    return data


def model_from(data: bytes, info: ModelInfo) -> ScoringModel:
    """The model `info` describes, from its artifact: refused unless the artifact's digest
    is the one the store recorded when it wrote it."""
    if digest(data) != info.digest:
        raise TamperedArtifact(
            f"model {info.version}: artifact digest does not match the one recorded when it "
            "was stored; refusing to load it"
        )
    if info.kind == "zscore":
        return ZScoreModel.from_artifact(data, info.version)
    if info.kind == "forest":
        from pipeline.adapters.model.forest import ForestModel  # noqa: PLC0415 - optional

        return ForestModel.from_artifact(data, info.version)
    raise ModelError(f"model {info.version}: unknown kind {info.kind!r}")
