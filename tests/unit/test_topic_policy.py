"""What the application's topics keep, by kind: events and retries for `retention_hours`,
dead letters until purged, changelogs compacted."""

from __future__ import annotations

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.application.topic_policy import TopicKind, topic_config
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings, TopicSettings


def test_each_kind_of_topic_has_its_retention() -> None:
    assert topic_config(TopicKind.EVENTS, retention_hours=24) == {
        "cleanup.policy": "delete",
        "retention.ms": "86400000",
    }
    assert topic_config(TopicKind.RETRY, retention_hours=24)["retention.ms"] == "86400000"
    assert topic_config(TopicKind.DEAD_LETTERS, retention_hours=24) == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
    }
    assert topic_config(TopicKind.CHANGELOG, retention_hours=24)["cleanup.policy"] == "compact"


async def test_the_application_creates_its_topics_with_the_policy_of_their_kind() -> None:
    settings = Settings(topics=TopicSettings(retention_hours=48))
    pipeline = await bootstrap(
        settings,
        log=InMemoryEventLog(),
        registry=InMemorySchemaRegistry(),
        store=InMemorySensorStore(),
    )

    configs = {spec.name: dict(spec.config) for spec in pipeline.topic_specs()}

    two_days = "172800000"
    assert configs["sensor-readings"]["retention.ms"] == two_days
    assert configs["sensor-readings.retry.1"]["retention.ms"] == two_days
    assert configs["system-alerts"]["retention.ms"] == two_days
    assert configs["sensor-readings.dlq"]["retention.ms"] == "-1"
    assert configs["sensor-metadata"]["cleanup.policy"] == "compact"
