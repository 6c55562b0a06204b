"""`pipeline dlq`: dead letters read from the database with filters, shown in full, purged;
replay's dry run; exit codes a script can rely on (0 ok, 1 failure, 2 usage, 3 not found)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from pipeline.adapters.sql import SqlSensorStore
from pipeline.adapters.sql.migrate import upgrade
from pipeline.application.ports import DeadLetter, DeadLetterFilter
from pipeline.application.ports.checkpoint import CheckpointBatch
from pipeline.entrypoints import cli
from tests.projection import checkpoint_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOPIC = "sensor-readings"


def letter(offset: int, error_class: str = "bad_magic_byte", hours: int = 0) -> DeadLetter:
    return DeadLetter(
        topic=TOPIC,
        partition=2,
        offset=offset,
        key=b"temp-0001",
        value=b"\x07garbage",
        timestamp_ms=1_772_366_400_000,
        error_class=error_class,
        message=f"{error_class} at {offset}",
        stack_trace="Traceback (most recent call last):\n  boom" if offset == 11 else None,
        attempts=1,
        first_failed_at=T0 + timedelta(hours=hours),
        last_failed_at=T0 + timedelta(hours=hours),
        worker_id="host:1",
        group_id="pipeline-sensors",
    )


@pytest.fixture(autouse=True)
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated SQLite database holding three dead letters, and no other service."""
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)
    url = f"sqlite+aiosqlite:///{tmp_path / 'dlq.db'}"
    monkeypatch.setenv("PIPELINE_DATABASE__URL", url)
    upgrade(url)
    letters = [letter(10), letter(11, "reading_out_of_range", hours=2), letter(12)]

    async def fill() -> None:
        store = SqlSensorStore.from_url(url)
        await checkpoint_for(store).commit(
            CheckpointBatch(
                group_id="pipeline-sensors", start_offsets={}, next_offsets={}, dead_letters=letters
            )
        )
        await store.close()

    asyncio.run(fill())
    yield url
    structlog.reset_defaults()


def remaining(url: str) -> list[int]:
    async def find() -> list[int]:
        store = SqlSensorStore.from_url(url)
        try:
            found = await store.dead_letters.find_dead_letters(DeadLetterFilter())
        finally:
            await store.close()
        return [x.offset for x in found]

    return asyncio.run(find())


def test_list_prints_one_line_per_dead_letter_matching_the_filters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["dlq", "list", "--topic", TOPIC, "--error-class", "bad_magic_byte"])

    out = capsys.readouterr()
    assert code == 0
    lines = out.out.splitlines()
    assert lines[0].split("\t")[:4] == ["TOPIC", "PARTITION", "OFFSET", "ERROR_CLASS"]
    assert [line.split("\t")[2] for line in lines[1:]] == ["10", "12"]
    assert "2 dead letter(s)" in out.err


def test_list_filters_by_time_and_offset_range_and_prints_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    since = (T0 + timedelta(hours=1)).isoformat()

    code = cli.main(["dlq", "list", "--since", since, "--from-offset", "11", "--json"])

    assert code == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["offset"] == 11
    assert json.loads(line)["error_class"] == "reading_out_of_range"


def test_list_with_nothing_matching_succeeds_with_an_empty_listing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["dlq", "list", "--topic", "elsewhere"])

    out = capsys.readouterr()
    assert code == 0
    assert out.out == ""
    assert "0 dead letter(s)" in out.err


def test_show_prints_everything_stored_about_one_dead_letter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["dlq", "show", f"{TOPIC}:2:11"])

    out = capsys.readouterr().out
    assert code == 0
    assert "reading_out_of_range" in out
    assert b"\x07garbage".hex() in out
    assert "Traceback (most recent call last)" in out


def test_show_of_a_position_without_a_dead_letter_exits_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["dlq", "show", f"{TOPIC}:2:99"]) == 3
    assert "no dead letter" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq", "show", "sensor-readings:2"], "TOPIC:PARTITION:OFFSET"),
        (["dlq", "list", "--since", "yesterday"], "not an ISO 8601 time"),
        (["dlq", "list", "--from-offset", "-3"], "must be >= 0"),
        (["dlq", "nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)

    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_purge_deletes_the_chosen_dead_letters_and_says_how_many(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["dlq", "purge", "--error-class", "bad_magic_byte"])

    assert code == 0
    assert "purged 2 dead letter(s)" in capsys.readouterr().out
    assert remaining(database) == [11]


def test_purge_dry_run_and_unfiltered_purge_delete_nothing(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dlq", "purge", "--topic", TOPIC, "--dry-run"]) == 0
    assert "would purge 3 dead letter(s)" in capsys.readouterr().out
    assert cli.main(["dlq", "purge"]) == 2
    assert "--all" in capsys.readouterr().err
    assert remaining(database) == [10, 11, 12]


def test_replay_dry_run_lists_what_would_be_sent_without_kafka(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["dlq", "replay", "--error-class", "reading_out_of_range", "--dry-run"])

    out = capsys.readouterr()
    assert code == 0
    assert f"would re-drive {TOPIC}:2:11 (reading_out_of_range) to {TOPIC}" in out.out
    assert "would re-drive 1 record(s)" in out.err


def test_replay_without_kafka_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dlq", "replay", "--all"]) == 2
    assert "no Kafka configured" in capsys.readouterr().err


def test_a_database_without_the_dead_letters_table_fails_with_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")

    assert cli.main(["dlq", "list"]) == 1
    assert "run `pipeline db upgrade` first" in capsys.readouterr().err
