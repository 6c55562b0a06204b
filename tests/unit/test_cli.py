"""The command line: usage errors exit 2 with a message, secrets stay masked, the embedded
demo and the migrations run without any service."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from pipeline.adapters.sql.migrate import current, head, upgrade
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
        (["produce", "stocks"], "invalid choice: 'stocks'"),
        (["produce", "payments", "--count", "-1"], "must be >= 0"),
        (["replay", "sensors"], "--from-offset"),
        (["replay", "sensors", "--from-offset", "-1"], "must be >= 0"),
        (["bench", "sensors", "--events", "0"], "must be > 0"),
        (["bench", "sensors", "--rates", "5000,0"], "must be numbers > 0"),
        (["bench", "sensors", "--rates", "5000,fast"], "not a number: 'fast'"),
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


@pytest.mark.parametrize("domain", ["sensors", "shop", "payments", "social"])
def test_as_fast_as_possible_without_a_count_is_a_usage_error(
    domain: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")

    assert cli.main(["produce", domain, "--rate", "0"]) == 2
    assert "needs --count" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "flags"),
    [
        (["produce", "shop", "--sensors", "5"], "--sensors"),
        (
            ["produce", "social", "--anomaly-rate", "0.1", "--sensors", "3"],
            "--sensors, --anomaly-rate",
        ),
    ],
)
def test_sensor_options_for_another_domain_are_a_usage_error(
    argv: list[str], flags: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert f"{flags} only applies to sensors" in capsys.readouterr().err


def test_processes_for_sensors_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["produce", "sensors", "--processes", "2"]) == 2
    assert "--processes does not apply to sensors" in capsys.readouterr().err


def test_more_processes_than_lanes_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["produce", "shop", "--processes", "13"])
    assert exit_.value.code == 2
    assert "argument --processes: invalid choice: 13" in capsys.readouterr().err


def test_zero_processes_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["produce", "shop", "--processes", "0"])
    assert exit_.value.code == 2
    assert "--processes" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["produce", "sensors", "--count", "10", "--rate", "0"],
        ["produce", "payments", "--count", "10", "--rate", "0"],
        ["replay", "sensors", "--from-offset", "0"],
        ["topics", "create"],
    ],
)
def test_commands_that_need_kafka_refuse_to_use_the_in_memory_log(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert "PIPELINE_KAFKA__BOOTSTRAP_SERVERS" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "sensor-aggregates", "--from-offset", "0", "--to-offset", "5"],
        ["replay", "sensor-aggregates", "--from-time", "2026-11-29T12:00:00Z", "--to-offset", "9"],
    ],
)
def test_a_replay_of_a_job_writing_to_topics_with_an_end_is_a_usage_error(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")

    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "rewinds the job's group and runs on to the end; --to-offset does not apply" in err
    assert err.count("\n") == 1


def test_worker_without_kafka_explains_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert worker.main(["sensors", "--until-caught-up"]) == 2
    assert "PIPELINE_KAFKA__BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_bench_without_the_real_stack_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench", "sensors", "--events", "10"]) == 2
    assert "needs real Kafka and PostgreSQL" in capsys.readouterr().err
    assert cli.main(["bench", "sensors", "--events", "10", "--floor", "2"]) == 2
    assert "needs real Kafka and PostgreSQL" in capsys.readouterr().err


def test_bench_takes_one_rate_or_a_list_of_rates_not_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bench", "sensors", "--rate", "5000", "--rates", "5000,10000"]) == 2
    assert "give --rate or --rates, not both" in capsys.readouterr().err


def test_bench_floor_needs_a_positive_number_of_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["bench", "sensors", "--floor", "0"])

    assert exited.value.code == 2
    assert "--floor" in capsys.readouterr().err


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


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("PIPELINE_KAFKA__OPTIONS", '{"ssl.key.password": s3cret', "is not valid JSON"),
        ("PIPELINE_THRESHOLDS", "{temperature", "is not valid JSON"),
        (
            "PIPELINE_DATABASE__URL",
            "postgresql+asyncpg://app:s3cret@db:fivefour/p",
            "the port must be a number",
        ),
        ("PIPELINE_DATABASE__URL", "s3cret", "not a database URL"),
        ("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:abc", "'127.0.0.1:abc': the port must"),
    ],
)
def test_an_invalid_setting_is_one_line_naming_its_variable_and_exits_2(
    variable: str,
    value: str,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)

    assert cli.main(["config"]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"pipeline: error: invalid settings: {variable}")
    assert said in err
    assert "s3cret" not in err


def test_the_worker_reports_an_invalid_setting_the_same_way(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_KAFKA__OPTIONS", "not json")

    assert worker.main(["sensors"]) == 2

    err = capsys.readouterr().err
    assert err == (
        "pipeline-worker: error: invalid settings: PIPELINE_KAFKA__OPTIONS is not valid JSON "
        "(Expecting value: line 1 column 1 (char 0))\n"
    )


def test_a_bad_value_inside_a_json_setting_names_that_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_THRESHOLDS", '{"temperature": {"high": "hot"}}')

    assert cli.main(["config"]) == 2

    assert capsys.readouterr().err.startswith(
        "pipeline: error: invalid settings: PIPELINE_THRESHOLDS (thresholds.temperature.high): "
    )


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("run", "prog"),
    [
        (lambda: cli.main(["produce", "sensors", "--count", "10"]), "pipeline"),
        (lambda: worker.main(["sensors"]), "pipeline-worker"),
    ],
    ids=["produce", "worker"],
)
def test_an_unreachable_broker_is_one_line_naming_the_address_and_what_to_check(
    run: Callable[[], int],
    prog: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    address = f"127.0.0.1:{closed_port()}"
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    monkeypatch.setenv("PIPELINE_DATABASE__URL", url)
    monkeypatch.setenv("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", address)
    monkeypatch.setenv("PIPELINE_KAFKA__CONNECT_TIMEOUT_S", "3")
    monkeypatch.setenv("PIPELINE_LOG_LEVEL", "WARNING")

    started = time.monotonic()
    code = run()

    assert code == 69
    assert time.monotonic() - started < 15
    err = capfd.readouterr().err  # the process's stderr, librdkafka's own writes included
    assert err.count("\n") == 1, err
    assert err.startswith(
        f"{prog}: error: no connection to the Kafka brokers at {address} succeeded within 3 s ("
    )
    assert "Connection refused" in err
    assert "scripts/stack up" in err
    assert "PIPELINE_KAFKA__BOOTSTRAP_SERVERS" in err


def test_jobs_lists_each_job_with_its_sources_state_and_sinks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["jobs", "--json"]) == 0

    jobs = {job["job"]: job for job in json.loads(capsys.readouterr().out)}
    sensors, aggregates, shop = jobs["sensors"], jobs["sensor-aggregates"], jobs["shop"]
    payments = jobs["payments"]
    assert sensors["job"] == "sensors"
    assert sensors["sources"] == {"sensor-readings": "ReadingRow"}
    assert sensors["tables"] == {"sensor-metadata": "SensorMetadata, global"}
    assert sensors["state"] == ["aggregates-1m"]
    assert set(sensors["sinks"]) == {"readings", "alerts", "aggregates_1m"}
    assert sensors["authority"] == "database"
    assert "database transaction" in sensors["guarantee"]
    assert aggregates["job"] == "sensor-aggregates"
    assert aggregates["sources"] == {"sensor-readings": "Reading"}
    assert aggregates["tables"] == {}
    assert aggregates["state"] == ["aggregates-1m"]
    assert list(aggregates["sinks"]) == ["aggregates"]
    assert "sensor-aggregates-1m" in aggregates["sinks"]["aggregates"]
    assert aggregates["authority"] == "kafka"
    assert "Kafka transaction" in aggregates["guarantee"]
    assert shop["sources"] == {"ecommerce-events": "ShopEvent"}
    assert "sessions" in shop["state"]
    assert set(shop["sinks"]) == {
        "shop_sessions",
        "shop_funnel_5m",
        "shop_revenue_1m",
        "shop_top_products_1h",
        "alerts",
    }
    assert shop["authority"] == "database"
    assert payments["job"] == "payments"
    assert payments["sources"] == {
        "transactions": "Transaction",
        "payment-outcomes": "PaymentOutcome",
    }
    assert payments["state"] == ["table:accounts", "account-activity", "outcomes"]
    assert set(payments["sinks"]) == {
        "flagged_transactions",
        "fraud_flag_reasons",
        "alerts",
        "transaction_outcomes",
    }
    assert payments["authority"] == "database"
    assert (jobs["social-tags"]["authority"], jobs["social"]["authority"]) == ("kafka", "database")
    assert jobs["social"]["sources"] == {"social-hashtags": "HashtagUse"}
