"""A model store in the database (table `anomaly_models`, migrations 0009 and 0011):
artifact and metadata per version in one row, and when it was promoted; each model family
(`namespace`) has its own versions and current model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.model.artifacts import artifact_of, checked_namespace, digest, model_from
from pipeline.adapters.sql.tables import anomaly_models
from pipeline.application.errors import UnknownModel
from pipeline.application.ports.model import ModelInfo, ScoringModel

_INFO_COLUMNS = [
    c for c in anomaly_models.c if c.name not in ("namespace", "artifact", "promoted_at")
]


def _info(row: RowMapping) -> ModelInfo:
    return ModelInfo(
        version=row["version"],
        kind=row["kind"],
        trained_at=row["trained_at"],
        sample_size=row["sample_size"],
        features=tuple(row["features"]),
        contamination=row["contamination"],
        evaluation=dict(row["evaluation"]),
        accepted=row["accepted"],
        digest=row["digest"],
    )


class SqlModelStore:
    """The models of family `namespace` in the `anomaly_models` table of `engine`'s
    database."""

    def __init__(self, engine: AsyncEngine, *, namespace: str) -> None:
        self.engine = engine
        self.namespace = checked_namespace(namespace)
        self._mine = anomaly_models.c.namespace == self.namespace

    async def save(self, model: ScoringModel, info: ModelInfo) -> ModelInfo:
        """Insert the model's row (a version is stored once)."""
        data = artifact_of(model)
        stored = replace(info, digest=digest(data))
        async with self.engine.begin() as connection:
            await connection.execute(
                anomaly_models.insert().values(
                    namespace=self.namespace,
                    version=stored.version,
                    kind=stored.kind,
                    trained_at=stored.trained_at,
                    sample_size=stored.sample_size,
                    features=list(stored.features),
                    contamination=stored.contamination,
                    evaluation=dict(stored.evaluation),
                    accepted=stored.accepted,
                    digest=stored.digest,
                    artifact=data,
                )
            )
        return stored

    async def list(self) -> Sequence[ModelInfo]:
        """Every model, oldest first."""
        query = (
            sa.select(*_INFO_COLUMNS)
            .where(self._mine)
            .order_by(anomaly_models.c.trained_at, anomaly_models.c.version)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_info(row) for row in rows]

    async def _row(self, version: str, *columns: Any) -> RowMapping:
        query = sa.select(*columns).where(self._mine, anomaly_models.c.version == version)
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            raise UnknownModel(f"no {self.namespace} model {version!r} in the database")
        return row

    async def info(self, version: str) -> ModelInfo:
        """The metadata of `version`."""
        return _info(await self._row(version, *_INFO_COLUMNS))

    async def load(self, version: str) -> ScoringModel:
        """The model `version`, its artifact checked against the recorded digest."""
        row = await self._row(version, *_INFO_COLUMNS, anomaly_models.c.artifact)
        return model_from(bytes(row["artifact"]), _info(row))

    async def current(self) -> str | None:
        """The newest promoted version, else the newest accepted one."""
        table = anomaly_models
        query = (
            sa.select(table.c.version)
            .where(self._mine, table.c.accepted | table.c.promoted_at.is_not(None))
            .order_by(
                table.c.promoted_at.desc().nulls_last(),
                table.c.trained_at.desc(),
                table.c.version.desc(),
            )
            .limit(1)
        )
        async with self.engine.connect() as connection:
            found: str | None = (await connection.execute(query)).scalar()
        return found

    async def promote(self, version: str) -> None:
        """Make `version` current."""
        update = (
            anomaly_models.update()
            .where(self._mine, anomaly_models.c.version == version)
            .values(promoted_at=datetime.now(UTC))
        )
        async with self.engine.begin() as connection:
            result = await connection.execute(update)
        if result.rowcount == 0:
            raise UnknownModel(f"no {self.namespace} model {version!r} in the database")
