"""The model store contract: models stored with their metadata come back scoring alike; the
current model is the last promoted, else the newest accepted; an artifact that is not the
one stored is refused. Run against the directory store, SQLite and a throwaway PostgreSQL
database."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.adapters.model import FilesystemModelStore, ZScoreModel, trainer_for
from pipeline.adapters.model.sql import SqlModelStore
from pipeline.adapters.sql import create_engine
from pipeline.adapters.sql.migrate import upgrade
from pipeline.adapters.sql.tables import anomaly_models
from pipeline.application.errors import ConfigurationError, TamperedArtifact, UnknownModel
from pipeline.application.ports.model import ModelInfo, ModelStore, ScoringModel
from tests.databases import module_database
from tests.unit.anomalies.builders import FEATURES, a_row

ZSCORE = FEATURES.index("zscore")


def info_of(model: ScoringModel, hour: int = 1, *, accepted: bool = True) -> ModelInfo:
    return ModelInfo(
        version=model.version,
        kind=model.kind,
        trained_at=datetime(2026, 11, 30, hour, tzinfo=UTC),
        sample_size=500,
        features=FEATURES,
        contamination=0.03,
        evaluation={"false_alarm_rate": 0.02, "recall_on_flagged": 0.9},
        accepted=accepted,
    )


def rows(n: int) -> list[list[float]]:
    rng = random.Random(5)
    return [
        a_row(zscore=rng.gauss(0, 1), trend=rng.gauss(0, 1), repeats=rng.choice((0.0, 9.0)))
        for _ in range(n)
    ]


class ModelStoreContract:
    """What every model store does. Subclasses provide `store` (namespace `sensors`),
    `tamper` and `sibling`."""

    async def tamper(self, store: ModelStore, version: str) -> None:
        raise NotImplementedError

    def sibling(self, store: ModelStore, namespace: str) -> ModelStore:
        """The store of another model family beside `store` (same directory or database)."""
        raise NotImplementedError

    async def test_each_namespace_keeps_its_own_versions_and_current_model(
        self, store: ModelStore
    ) -> None:
        payments = self.sibling(store, "payments")
        sensors_model = ZScoreModel("z1", ZSCORE, threshold=4.0)
        payments_model = ZScoreModel("z1", ZSCORE, threshold=6.0)
        await store.save(sensors_model, info_of(sensors_model, 1))
        await payments.save(payments_model, info_of(payments_model, 2))
        only_payments = ZScoreModel("p2", ZSCORE)
        await payments.save(only_payments, info_of(only_payments, 3))
        await payments.promote("z1")

        assert [i.version for i in await store.list()] == ["z1"]
        assert [i.version for i in await payments.list()] == ["z1", "p2"]
        assert await store.current() == "z1"
        assert await payments.current() == "z1"
        probe = [a_row(zscore=5.0)]
        assert (await store.load("z1")).score(probe).anomalous == [True]
        assert (await payments.load("z1")).score(probe).anomalous == [False]
        with pytest.raises(UnknownModel):
            await store.load("p2")
        with pytest.raises(UnknownModel):
            await store.promote("p2")

    async def test_a_stored_forest_loads_and_scores_as_before(self, store: ModelStore) -> None:
        forest = trainer_for("forest", features=FEATURES, contamination=0.03).fit(
            rows(500), version="forest-1"
        )
        saved = await store.save(forest, info_of(forest))

        loaded = await store.load("forest-1")

        probe = rows(40)
        assert loaded.score(probe) == forest.score(probe)
        assert await store.info("forest-1") == saved
        assert [i.version for i in await store.list()] == ["forest-1"]

    async def test_current_is_the_last_promoted_else_the_newest_accepted(
        self, store: ModelStore
    ) -> None:
        assert await store.current() is None
        for hour, accepted in ((1, True), (2, True), (3, False)):
            model = ZScoreModel(f"z{hour}", ZSCORE)
            await store.save(model, info_of(model, hour, accepted=accepted))

        newest_accepted = await store.current()
        await store.promote("z1")

        assert newest_accepted == "z2"
        assert await store.current() == "z1"
        assert [i.accepted for i in await store.list()] == [True, True, False]

    async def test_unknown_versions_are_refused(self, store: ModelStore) -> None:
        with pytest.raises(UnknownModel):
            await store.load("nope")
        with pytest.raises(UnknownModel):
            await store.promote("nope")

    async def test_an_artifact_changed_after_it_was_stored_is_refused(
        self, store: ModelStore
    ) -> None:
        model = ZScoreModel("z1", ZSCORE, threshold=4.0)
        await store.save(model, info_of(model))
        await self.tamper(store, "z1")

        with pytest.raises(TamperedArtifact):
            await store.load("z1")


class TestFilesystemModelStore(ModelStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ModelStore:
        return FilesystemModelStore(tmp_path / "models", namespace="sensors")

    async def tamper(self, store: ModelStore, version: str) -> None:
        assert isinstance(store, FilesystemModelStore)
        (store.directory / f"{version}.model").write_bytes(b'{"column": 1, "threshold": 0.5}')

    def sibling(self, store: ModelStore, namespace: str) -> ModelStore:
        assert isinstance(store, FilesystemModelStore)
        return FilesystemModelStore(store.directory.parent, namespace=namespace)

    def test_a_namespace_that_cannot_name_a_directory_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError):
            FilesystemModelStore(tmp_path, namespace="../sensors")


class SqlTampering:
    def sibling(self, store: ModelStore, namespace: str) -> ModelStore:
        assert isinstance(store, SqlModelStore)
        return SqlModelStore(store.engine, namespace=namespace)

    async def tamper(self, store: ModelStore, version: str) -> None:
        assert isinstance(store, SqlModelStore)
        async with store.engine.begin() as connection:
            await connection.execute(
                anomaly_models.update()
                .where(
                    anomaly_models.c.namespace == store.namespace,
                    anomaly_models.c.version == version,
                )
                .values(artifact=b'{"column": 1, "threshold": 0.5}')
            )


class TestSqliteModelStore(SqlTampering, ModelStoreContract):
    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[ModelStore]:
        url = f"sqlite+aiosqlite:///{tmp_path / 'models.db'}"
        upgrade(url)
        engine = create_engine(url)
        yield SqlModelStore(engine, namespace="sensors")
        await engine.dispose()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from module_database("contract_models")


@pytest.mark.integration
class TestPostgresModelStore(SqlTampering, ModelStoreContract):
    @pytest.fixture
    async def store(self, postgres_url: str) -> AsyncIterator[ModelStore]:
        engine = create_engine(postgres_url, pool_size=2)
        async with engine.begin() as connection:
            await connection.execute(sa.text("TRUNCATE anomaly_models"))
        yield SqlModelStore(engine, namespace="sensors")
        await engine.dispose()
