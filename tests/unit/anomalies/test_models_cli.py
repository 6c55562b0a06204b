"""`pipeline models list|show|promote|rollback` on a directory store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.adapters.model import FilesystemModelStore, ZScoreModel
from pipeline.application.ports.model import ModelInfo
from pipeline.entrypoints import cli
from tests.unit.anomalies.builders import FEATURES


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FilesystemModelStore:
    monkeypatch.setenv("PIPELINE_ANOMALY__STORE_DIR", str(tmp_path))
    store = FilesystemModelStore(tmp_path, namespace="sensors")
    for hour, accepted in ((1, True), (2, False), (3, True)):
        model = ZScoreModel(f"z{hour}", FEATURES.index("zscore"))
        info = ModelInfo(
            version=model.version,
            kind=model.kind,
            trained_at=datetime(2026, 11, 30, hour, tzinfo=UTC),
            sample_size=100 * hour,
            features=FEATURES,
            contamination=0.03,
            accepted=accepted,
        )
        asyncio.run(store.save(model, info))
    return store


def test_list_marks_the_current_model(
    store: FilesystemModelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "list"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["z1", "zscore"], ["z2", "zscore"], ["*", "z3"]]
    assert "refused" in lines[1]


def test_show_prints_the_metadata_as_json(
    store: FilesystemModelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "show", "z2"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["accepted"], shown["sample_size"]) == ("z2", False, 200)


def test_rollback_skips_refused_models_and_stops_at_the_oldest(
    store: FilesystemModelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "rollback"]) == 0
    assert asyncio.run(store.current()) == "z1"
    assert cli.main(["models", "rollback"]) == 1
    assert "no accepted model before z1" in capsys.readouterr().err


def test_promoting_an_unknown_version_fails_with_a_message(
    store: FilesystemModelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "promote", "z9"]) == 1
    assert "no model 'z9'" in capsys.readouterr().err
    assert asyncio.run(store.current()) == "z3"


def test_namespace_selects_the_model_family(
    store: FilesystemModelStore, capsys: pytest.CaptureFixture[str]
) -> None:
    payments = FilesystemModelStore(store.directory.parent, namespace="payments")
    model = ZScoreModel("p1", FEATURES.index("zscore"))
    info = ModelInfo(
        version="p1",
        kind=model.kind,
        trained_at=datetime(2026, 11, 30, 4, tzinfo=UTC),
        sample_size=50,
        features=FEATURES,
        contamination=0.04,
    )
    asyncio.run(payments.save(model, info))

    assert cli.main(["models", "--namespace", "payments", "list"]) == 0
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [["*", "p1"]]
    assert cli.main(["models", "--namespace", "payments", "promote", "z1"]) == 1
    assert asyncio.run(store.current()) == "z3"
