"""The scoring models, the model store, and retraining's judgement."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.adapters.model import FilesystemModelStore, ZScoreModel, trainer_for
from pipeline.adapters.model.forest import ForestModel
from pipeline.application.errors import ModelError, TamperedArtifact, UnknownModel
from pipeline.application.ports.model import ModelInfo, Scored, ScoringModel
from pipeline.application.scoring import LiveModel, Retrainer, RetrainPolicy
from tests.unit.anomalies.builders import FEATURES, a_row

ZSCORE = FEATURES.index("zscore")


def deviating(zscore: float, run: float = 1.0, persistence: float = 0.0) -> list[float]:
    """A row whose deviation features agree with its zscore."""
    return a_row(zscore=zscore, deviation=abs(zscore), run=run, persistence=persistence)


def normal_rows(n: int, seed: int = 1) -> list[list[float]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        zscore = rng.gauss(0, 1)
        rows.append(deviating(zscore, float(abs(zscore) > 1.0), rng.uniform(0, 0.3)))
    return rows


def outlier_rows(n: int, seed: int = 1) -> list[list[float]]:
    rng = random.Random(seed)
    return [
        deviating(rng.uniform(15, 60), rng.randint(1, 100), rng.uniform(2, 10)) for _ in range(n)
    ]


def info_of(model: ScoringModel, **fields: object) -> ModelInfo:
    values: dict[str, object] = {
        "version": model.version,
        "kind": model.kind,
        "trained_at": datetime(2026, 11, 30, tzinfo=UTC),
        "sample_size": 100,
        "features": FEATURES,
        "contamination": 0.03,
    }
    values.update(fields)
    return ModelInfo(**values)  # type: ignore[arg-type]


def test_zscore_model_flags_rows_beyond_its_threshold_only() -> None:
    model = ZScoreModel("z1", ZSCORE, threshold=4.0)

    scored = model.score([a_row(zscore=3.9), a_row(zscore=-4.1), a_row(zscore=12.0)])

    assert scored.anomalous == [False, True, True]
    assert scored.scores == [3.9, 4.1, 12.0]


def test_zscore_trainer_never_sets_its_threshold_below_the_floor() -> None:
    trainer = trainer_for("zscore", features=FEATURES, contamination=0.03)

    model = trainer.fit(normal_rows(1_000), version="z")

    assert model.score([a_row(zscore=3.5)]).anomalous == [False]


def test_forest_scores_a_whole_batch_and_flags_the_outliers() -> None:
    stuck = [a_row(repeats=float(n)) for n in range(10, 30)]
    sample = [*normal_rows(2_000), *outlier_rows(20), *stuck]
    forest = trainer_for("forest", features=FEATURES, contamination=0.02).fit(sample, version="f1")
    spike = deviating(40.0)
    drift = deviating(2.5, run=80.0, persistence=2.5)
    batch = [*normal_rows(997, seed=2), spike, drift, a_row(zscore=0.0, repeats=30.0)]

    scored = forest.score(batch)

    assert len(scored.scores) == len(batch) == len(scored.anomalous)
    assert scored.anomalous[-3:] == [True, True, True]
    assert sum(scored.anomalous[:-3]) < 0.05 * 997
    assert all((s > 0) == a for s, a in zip(scored.scores, scored.anomalous, strict=True))


def drift_rows(n: int, seed: int = 1) -> list[list[float]]:
    """Readings of drifts: off either way by 1.5–12 stddevs, for long runs."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        zscore = rng.uniform(1.5, 12.0) * rng.choice((-1.0, 1.0))
        rows.append(deviating(zscore, rng.randint(10, 150), min(abs(zscore), rng.uniform(1, 8))))
    return rows


def test_forest_flags_a_moderate_spike_when_drifts_and_stuck_runs_fill_its_contamination() -> None:
    # 600 of 5,604 rows are drifts and stuck runs, more than the 5% the forest flags: its
    # threshold falls among them, and a spike, off on one excursion alone, must still
    # score beyond it.
    stuck = [a_row(zscore=0.3, deviation=0.3, repeats=float(n % 60 + 1)) for n in range(300)]
    far_spikes = [deviating(z) for z in (20.0, -35.0, 50.0, -60.0)]
    sample = [*normal_rows(5_000), *drift_rows(300), *stuck, *far_spikes]
    forest = trainer_for("forest", features=FEATURES, contamination=0.05).fit(sample, version="f")

    scored = forest.score([deviating(z) for z in (7.0, -7.0, 7.5, -7.5)])

    assert scored.anomalous == [True, True, True, True]


@pytest.mark.parametrize("kind", ["forest", "zscore"])
async def test_model_store_round_trip(tmp_path: Path, kind: str) -> None:
    store = FilesystemModelStore(tmp_path, namespace="sensors")
    model = trainer_for(kind, features=FEATURES, contamination=0.03).fit(
        normal_rows(500), version=f"{kind}-1"
    )
    saved = await store.save(model, info_of(model, evaluation={"false_alarm_rate": 0.5}))

    loaded = await store.load(f"{kind}-1")
    probe = [*normal_rows(50, seed=3), deviating(30.0)]

    assert loaded.score(probe) == model.score(probe)
    assert await store.info(f"{kind}-1") == saved
    assert saved.digest
    assert saved.evaluation == {"false_alarm_rate": 0.5}
    assert [i.version for i in await store.list()] == [f"{kind}-1"]


async def test_loading_refuses_a_tampered_artifact(tmp_path: Path) -> None:
    store = FilesystemModelStore(tmp_path, namespace="sensors")
    model = trainer_for("forest", features=FEATURES, contamination=0.03).fit(
        normal_rows(300), version="f1"
    )
    await store.save(model, info_of(model))
    artifact = store.directory / "f1.model"
    artifact.write_bytes(artifact.read_bytes() + b"\0")

    with pytest.raises(TamperedArtifact, match="digest"):
        await store.load("f1")


def test_a_forest_artifact_holding_an_untrusted_type_is_refused() -> None:
    import skops.io  # noqa: PLC0415

    class Sneaky:
        pass

    with pytest.raises(ModelError, match="not a loadable forest artifact"):
        ForestModel.from_artifact(skops.io.dumps({"forest": Sneaky(), "columns": [0]}), "x")


async def test_current_is_the_newest_accepted_until_one_is_promoted(tmp_path: Path) -> None:
    store = FilesystemModelStore(tmp_path, namespace="sensors")
    for n, accepted in ((1, True), (2, True), (3, False)):
        model = ZScoreModel(f"z{n}", ZSCORE)
        await store.save(
            model,
            info_of(model, accepted=accepted, trained_at=datetime(2026, 11, 30, n, tzinfo=UTC)),
        )

    assert await store.current() == "z2"
    await store.promote("z1")
    assert await store.current() == "z1"
    with pytest.raises(UnknownModel):
        await store.promote("z9")


class FlagsEverything:
    """A candidate that flags every row: worse than any sane model."""

    kind = "zscore"

    def __init__(self, version: str) -> None:
        self.version = version

    def score(self, rows: object) -> Scored:
        n = len(rows)  # type: ignore[arg-type]
        return Scored(scores=[9.0] * n, anomalous=[True] * n)

    def artifact(self) -> bytes:
        return b"{}"


class FitsFlagsEverything:
    kind = "zscore"

    def fit(self, rows: object, *, version: str) -> FlagsEverything:
        del rows
        return FlagsEverything(version)


def live_with_sample(model: ScoringModel) -> LiveModel:
    live = LiveModel(model, sample_size=1_000)
    live.score(normal_rows(1_000))
    live.score(outlier_rows(100))
    return live


async def test_retraining_refuses_a_worse_model_and_keeps_the_current(tmp_path: Path) -> None:
    current = ZScoreModel("z-current", ZSCORE)
    live = live_with_sample(current)
    store = FilesystemModelStore(tmp_path, namespace="sensors")
    retrainer = Retrainer(
        live, FitsFlagsEverything(), store, features=FEATURES,
        policy=RetrainPolicy(min_sample=100),
    )  # fmt: skip

    info = await retrainer.retrain()

    assert info is not None
    assert not info.accepted
    assert live.model is current
    assert info.evaluation["false_alarm_rate"] == 1.0
    assert await store.current() is None


async def test_retraining_swaps_in_an_accepted_model_and_promotes_it(tmp_path: Path) -> None:
    live = live_with_sample(ZScoreModel("z-current", ZSCORE))
    store = FilesystemModelStore(tmp_path, namespace="sensors")
    trainer = trainer_for("forest", features=FEATURES, contamination=0.02)
    retrainer = Retrainer(
        live, trainer, store, features=FEATURES, policy=RetrainPolicy(min_sample=100)
    )

    info = await retrainer.retrain()

    assert info is not None
    assert info.accepted
    assert live.model.version == info.version == await store.current()
    assert info.sample_size > 0
    assert info.evaluation["recall_on_flagged"] >= 0.5


class FlagsNegative:
    """Flags the rows whose first column is negative."""

    kind = "zscore"
    version = "negative"

    def score(self, rows: Sequence[Sequence[float]]) -> Scored:
        return Scored(scores=[-row[0] for row in rows], anomalous=[row[0] < 0 for row in rows])


def test_the_sample_holds_the_newest_unflagged_and_flagged_rows_oldest_first() -> None:
    live = LiveModel(FlagsNegative(), sample_size=25, flagged_size=4)
    numbers = iter(range(1, 40))
    for size in (10, 7, 1, 12, 9):  # batches of 39 rows: 1, 2, -3, 4, 5, -6, ...
        live.score([[-n if n % 3 == 0 else n] for n in itertools.islice(numbers, size)])

    recent, flagged = live.sample()

    assert [row[0] for row in recent] == [n for n in range(1, 40) if n % 3][-25:]
    assert [row[0] for row in flagged] == [-27, -30, -33, -36, -39][-4:]
    assert live.scored == 39
