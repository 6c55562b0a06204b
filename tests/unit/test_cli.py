"""The command line: usage errors exit 2 with a message, secrets stay masked, the embedded
demo and the migrations run without any service."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from pipeline.adapters.sql.migrate import current, head
from pipeline.entrypoints import cli, worker


@pytest.fixture(autouse=True)
def no_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI reads settings from the environment: start every test from the defaults.
    It also configures logging onto the captured stderr, which later tests must not keep."""
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["produce", "sensors", "--count", "abc"], "not an integer: 'abc'"),
        (["produce", "sensors", "--rate", "-5"], "must be >= 0"),
        (["produce", "sensors", "--anomaly-rate", "2"], "between 0 and 1"),
        (["produce", "shop"], "invalid choice: 'shop'"),
        (["replay", "sensors"], "--from-offset"),
        (["replay", "sensors", "--from-offset", "-1"], "must be >= 0"),
        (["bench", "sensors", "--events", "0"], "must be > 0"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_are_usage_errors_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)

    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_as_fast_as_possible_without_a_count_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")

    assert cli.main(["produce", "sensors", "--rate", "0"]) == 2
    assert "needs --count" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["produce", "sensors", "--count", "10", "--rate", "0"],
        ["replay", "sensors", "--from-offset", "0"],
        ["topics", "create"],
    ],
)
def test_commands_that_need_kafka_refuse_to_use_the_in_memory_log(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert "PIPELINE_KAFKA__BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_worker_without_kafka_explains_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert worker.main(["sensors", "--until-caught-up"]) == 2
    assert "PIPELINE_KAFKA__BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_bench_without_the_real_stack_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench", "sensors", "--events", "10"]) == 2
    assert "needs real Kafka and PostgreSQL" in capsys.readouterr().err


def test_invalid_settings_are_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_WORKER__BATCH_SIZE", "0")

    assert cli.main(["config"]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_config_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_DATABASE__URL", "postgresql+asyncpg://app:hunter2@db:5432/p")
    monkeypatch.setenv("PIPELINE_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("PIPELINE_TOPICS__SENSOR_READINGS", "my-readings")

    assert cli.main(["config"]) == 0

    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "s3cret" not in out
    assert "postgresql+asyncpg://app:***@db:5432/p" in out
    assert '"sensor_readings": "my-readings"' in out


def test_db_upgrade_migrates_the_configured_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    monkeypatch.setenv("PIPELINE_DATABASE__URL", url)

    assert cli.main(["db", "upgrade"]) == 0

    assert current(url) == head()


SUMMARY = re.compile(
    r"^demo summary: this run processed (?P<processed>[\d,]+) readings .*: (?P<stored>[\d,]+) "
    r"stored, .*\ndatabase .*: (?P<database>[\d,]+) readings and [\d,]+ alerts stored by all runs$",
    re.MULTILINE,
)


def demo_summary(out: str) -> list[tuple[int, int, int]]:
    """(readings processed this run, stored this run, readings in the database) per summary."""

    def number(text: str) -> int:
        return int(text.replace(",", ""))

    return [
        (number(m["processed"]), number(m["stored"]), number(m["database"]))
        for m in SUMMARY.finditer(out)
    ]


def test_demo_runs_the_embedded_pipeline_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"

    code = cli.main(["demo", "--duration", "2", "--rate", "3000", "--db", str(db), "--no-api"])

    out = capsys.readouterr().out
    assert code == 0
    processed, stored, in_database = demo_summary(out)[0]
    assert processed > 0
    assert stored == processed == in_database
    assert db.exists()


def test_configured_thresholds_replace_the_defaults_of_their_type_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.entrypoints.settings import Settings  # noqa: PLC0415

    monkeypatch.setenv("PIPELINE_THRESHOLDS", '{"temperature": {"high": 40}}')

    thresholds = Settings().domain_thresholds()

    assert thresholds["temperature"].high == 40
    assert thresholds["temperature"].critical_high is None
    assert thresholds["humidity"].high == 90.0
    assert thresholds["pressure"].low == 950.0


def test_demo_run_twice_on_the_same_file_stores_every_reading_of_both_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    argv = ["demo", "--duration", "1", "--rate", "2000", "--db", str(db), "--no-api"]

    assert cli.main(argv) == 0
    assert cli.main(argv) == 0

    (first, stored_first, _), (second, stored_second, in_database) = demo_summary(
        capsys.readouterr().out
    )
    assert (stored_first, stored_second) == (first, second)
    assert in_database == first + second


def every_parser(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """`parser` and the parsers of all its subcommands, at every depth."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from every_parser(sub)


def undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """The options, positionals and subcommands of `parser` that have no help line."""
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            missing += [f"{parser.prog} {c.dest}" for c in action._choices_actions if not c.help]
        elif not action.help:
            missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    return missing


@pytest.mark.parametrize(
    "build", [cli.build_parser, worker.build_parser], ids=["pipeline", "pipeline-worker"]
)
def test_every_option_and_command_has_a_help_line(
    build: Callable[[], argparse.ArgumentParser],
) -> None:
    missing = [name for parser in every_parser(build()) for name in undocumented(parser)]

    assert missing == []


@pytest.mark.parametrize(
    ("main", "argv"),
    [
        (cli.main, ["produce"]),
        (cli.main, ["replay", "--from-offset", "0"]),
        (cli.main, ["bench"]),
        (cli.main, ["dlq", "show"]),
        (worker.main, []),
    ],
    ids=["produce", "replay", "bench", "dlq show", "pipeline-worker"],
)
def test_a_missing_argument_is_named_as_the_usage_line_shows_it(
    main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)

    err = capsys.readouterr().err
    usage, message = err.split(": error: ")
    missing = message.split("the following arguments are required: ")[1].strip()
    assert exit_.value.code == 2
    assert f" {missing}" in usage.replace("\n", " ")


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["demo", "--frob"], "demo"),
        (["produce", "sensors", "--frob"], "produce"),
        (["dlq", "list", "--frob"], "dlq list"),
    ],
)
def test_an_unknown_option_is_reported_with_the_usage_of_its_command(
    argv: list[str], command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)

    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith(f"usage: pipeline {command} [-h]")
    assert err.rstrip().endswith(f"pipeline {command}: error: unrecognized arguments: --frob")
