"""The ACLs of each principal: what it needs and nothing else (`pipeline acls`)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest
import structlog

from pipeline.application.access import (
    AccessLayout,
    AccessRule,
    Operation,
    Principals,
    access_rules,
)
from pipeline.entrypoints import cli
from pipeline.entrypoints.acls import access_layout
from pipeline.entrypoints.settings import RetrySettings, Settings, TopicSettings, WorkerSettings

TOPICS = (
    "readings",
    "readings.retry.1",
    "readings.retry.2",
    "readings.dlq",
    "readings.late",
    "alerts",
    "shop",
    "sensor-metadata",
)
LAYOUT = AccessLayout(
    topics=TOPICS,
    sources=("readings",),
    retry_topics=("readings.retry.1", "readings.retry.2"),
    dead_letter_topics=("readings.dlq",),
    late_topics=("readings.late",),
    outputs=("alerts",),
    changelogs=("sensor-metadata",),
    worker_groups=("p-sensors",),
    live_group="p-live-",
    connect_group="p-connect",
)


def allowed(
    rules: list[AccessRule], principal: str, *, metadata: bool = False
) -> set[tuple[str, str, str, str]]:
    """The principal's ACLs; without `metadata`, not its DESCRIBE and DESCRIBE_CONFIGS."""
    return {
        (r.operation.value, r.resource.value, r.pattern.value, r.name)
        for r in rules
        if r.principal == principal
        and (metadata or r.operation not in (Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS))
    }


def test_the_worker_reads_its_sources_and_writes_its_outputs_dead_letters_and_retries_only() -> (
    None
):
    rules = access_rules(LAYOUT, Principals(worker="User:worker"))

    assert allowed(rules, "User:worker") == {
        ("read", "topic", "literal", "readings"),
        # A retry level forwards its records back to the source topic.
        ("write", "topic", "literal", "readings"),
        ("read", "topic", "literal", "sensor-metadata"),
        ("read", "topic", "literal", "readings.retry.1"),
        ("write", "topic", "literal", "readings.retry.1"),
        ("read", "topic", "literal", "readings.retry.2"),
        ("write", "topic", "literal", "readings.retry.2"),
        ("write", "topic", "literal", "readings.dlq"),
        ("write", "topic", "literal", "readings.late"),
        ("write", "topic", "literal", "alerts"),
        ("read", "group", "prefixed", "p-sensors"),
    }


def test_every_command_may_see_the_metadata_and_configuration_of_every_application_topic() -> None:
    rules = access_rules(LAYOUT, Principals(producer="User:p", worker="User:w", api="User:a"))

    for principal in ("User:p", "User:w", "User:a"):
        mine = allowed(rules, principal, metadata=True)
        configs = {name for op, _, _, name in mine if op == "describe_configs"}
        seen = {name for op, kind, _, name in mine if kind == "topic"}
        assert configs == set(TOPICS)
        assert seen == set(TOPICS)


def test_the_api_may_only_read() -> None:
    rules = access_rules(LAYOUT, Principals(api="User:api"))

    assert allowed(rules, "User:api") == {
        ("read", "topic", "literal", "readings"),
        ("read", "topic", "literal", "alerts"),
        ("read", "group", "prefixed", "p-live-"),
    }
    assert {r.operation for r in rules} == {
        Operation.READ,
        Operation.DESCRIBE,
        Operation.DESCRIBE_CONFIGS,
    }


def test_the_producer_only_writes_the_sources() -> None:
    rules = access_rules(LAYOUT, Principals(producer="User:producer"))

    assert allowed(rules, "User:producer") == {("write", "topic", "literal", "readings")}


def test_the_producer_also_writes_the_generated_streams_no_job_reads_yet() -> None:
    layout = dataclasses.replace(LAYOUT, produced=("shop",))

    rules = access_rules(layout, Principals(producer="User:producer", worker="User:worker"))

    assert allowed(rules, "User:producer") == {
        ("write", "topic", "literal", "readings"),
        ("write", "topic", "literal", "shop"),
    }
    assert not any(name == "shop" for *_, name in allowed(rules, "User:worker"))


def test_a_job_under_kafka_authority_may_use_its_transactional_ids_and_changelog_topics() -> None:
    layout = dataclasses.replace(LAYOUT, transactional_groups=("p-agg",))

    rules = access_rules(layout, Principals(worker="User:worker", api="User:api"))

    assert allowed(rules, "User:worker") - allowed(
        access_rules(LAYOUT, Principals(worker="User:worker")), "User:worker"
    ) == {
        ("write", "transactional_id", "prefixed", "p-agg-"),
        ("create", "topic", "prefixed", "p-agg-"),
        ("read", "topic", "prefixed", "p-agg-"),
        ("write", "topic", "prefixed", "p-agg-"),
    }
    assert not any(name == "p-agg-" for *_, name in allowed(rules, "User:api", metadata=True))


def test_connect_owns_its_internal_topics_and_writes_the_changelogs() -> None:
    rules = access_rules(LAYOUT, Principals(connect="User:connect"))

    found = allowed(rules, "User:connect", metadata=True)
    assert ("read", "group", "literal", "p-connect") in found
    assert ("write", "topic", "literal", "sensor-metadata") in found
    assert {(op, name) for op, _, pattern, name in found if pattern == "prefixed"} == {
        (op.value, "p-connect-") for op in Operation if op is not Operation.DESCRIBE
    }
    assert not any(name == "readings" for *_, name in found)


def test_no_principal_no_rule_and_rules_are_sorted_without_duplicates() -> None:
    assert access_rules(LAYOUT, Principals()) == []
    both = access_rules(LAYOUT, Principals(worker="User:w", api="User:a"))
    assert both == sorted(set(both))


def test_the_layout_follows_the_settings() -> None:
    settings = Settings(
        topics=TopicSettings(
            sensor_readings="r",
            system_alerts="al",
            sensor_metadata="meta",
            sensor_aggregates="agg",
            ecommerce_events="shop",
        ),
        worker=WorkerSettings(group_id_prefix="team"),
        retry=RetrySettings(topic_delays_s=[1.0]),
    )

    layout = access_layout(settings, connect_group="cg")

    def sensor(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in names if n in ("r", "al", "agg") or n.startswith(("r.", "team-se")))

    assert set(layout.topics) >= {"r", "r.dlq", "r.late", "r.retry.1", "al", "meta"}
    assert sensor(layout.sources) == ("r",)
    assert sensor(layout.retry_topics) == ("r.retry.1",)
    assert sensor(layout.dead_letter_topics) == ("r.dlq",)
    assert sensor(layout.late_topics) == ("r.late",)
    # Every registered job: `sensors` (database authority, retry topics) and
    # `sensor-aggregates` (Kafka authority: its output topic, transactions and changelogs).
    assert sensor(layout.outputs) == ("al", "agg")
    assert layout.changelogs == ("meta", "accounts")
    assert sensor(layout.worker_groups) == ("team-sensor-aggregates", "team-sensors")
    assert sensor(layout.transactional_groups) == ("team-sensor-aggregates",)
    # The social jobs: `social-tags` writes the hashtags topic in transactions, which `social`
    # reads; `post-engagement` reads posts and engagement (retry topics: database authority).
    assert "social-hashtags" in layout.outputs
    assert {"social-posts", "social-engagement", "social-hashtags"} <= set(layout.sources)
    assert "social-posts.dlq" in layout.dead_letter_topics
    assert "team-social-tags" in layout.transactional_groups
    assert {"team-social", "team-post-engagement"} <= set(layout.worker_groups)
    # `shop` and `payments` (database authority; payments reads the accounts table).
    assert {"transactions", "payment-outcomes", "shop"} <= set(layout.sources)
    assert {"transactions.dlq", "shop.dlq"} <= set(layout.dead_letter_topics)
    assert {"team-payments", "team-shop"} <= set(layout.worker_groups)
    assert "transactions" not in layout.produced  # a source: the producer writes it as one
    assert "accounts" in layout.produced
    assert layout.live_group == "team-live-"
    assert layout.connect_group == "cg"


@pytest.fixture
def no_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("PIPELINE_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("no_services")
def test_acls_show_prints_one_tab_separated_line_per_acl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["acls", "show", "--producer", "User:p"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert "User:p\tWRITE\ttopic\tliteral\tsensor-readings" in out
    assert all(line.startswith("User:p\t") and line.count("\t") == 4 for line in out)


@pytest.mark.usefixtures("no_services")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["acls", "show"], "name at least one principal"),
        (["acls", "apply", "--worker", "User:w"], "no Kafka configured"),
    ],
)
def test_acls_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.usefixtures("no_services")
def test_a_principal_must_be_user_colon_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["acls", "show", "--worker", "worker"])

    assert exit_.value.code == 2
    assert "User:name" in capsys.readouterr().err
