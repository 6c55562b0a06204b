"""The application's topics: every topic a registered job consumes gets its dead-letter,
late and retry topics, derived from the job registry rather than listed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.application.errors import ConfigurationError
from pipeline.application.topic_names import dead_letter_topic, late_topic, retry_topic
from pipeline.domain import Alert
from pipeline.entrypoints.bootstrap import consumed_topics, topic_specs
from pipeline.entrypoints.jobs import JOBS, JobEntry
from pipeline.entrypoints.settings import Settings
from pipeline.streams import Job, Sink


def an_entry(name: str, topic: str) -> JobEntry:
    """A job reading `topic`, registered as `name`."""

    def build(settings: Settings) -> Job:
        del settings
        job = Job(name)
        job.source(topic, Alert, key=lambda a: a.source, event_time=lambda a: a.timestamp).to(
            Sink("audit", Alert)
        )
        return job

    def codecs(pipeline: Any) -> dict[str, Any]:
        del pipeline
        return {}

    return JobEntry(name=name, summary="audit", build=build, codecs=codecs, guarantee="none")


def names(settings: Settings) -> set[str]:
    return {spec.name for spec in topic_specs(settings)}


def derived(topic: str, settings: Settings) -> set[str]:
    levels = range(1, len(settings.retry.topic_delays_s) + 1)
    return {
        dead_letter_topic(topic),
        late_topic(topic),
        *(retry_topic(topic, level) for level in levels),
    }


def test_a_newly_registered_job_gets_the_derived_topics_of_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings()
    alerts = settings.topics.system_alerts
    assert not derived(alerts, settings) & names(settings)

    monkeypatch.setitem(JOBS, "audit", an_entry("audit", alerts))

    assert derived(alerts, settings) <= names(settings)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    assert {specs[t].partitions for t in derived(alerts, settings)} == {specs[alerts].partitions}


def test_every_topic_a_registered_job_consumes_has_its_derived_topics() -> None:
    settings = Settings()
    consumed = consumed_topics(settings)

    assert set(consumed) == {
        settings.topics.sensor_readings,
        settings.topics.ecommerce_events,
        settings.topics.transactions,
        settings.topics.payment_outcomes,
        settings.topics.accounts,
        settings.topics.social_posts,
        settings.topics.social_engagement,
        settings.topics.social_hashtags,
    }
    assert consumed[settings.topics.social_posts] == ["social-tags", "post-engagement"]
    for topic in consumed:
        assert derived(topic, settings) <= names(settings)


def test_a_global_table_read_outside_the_group_gets_no_derived_topics() -> None:
    settings = Settings()

    assert not derived(settings.topics.sensor_metadata, settings) & names(settings)


def test_a_job_consuming_a_topic_the_application_does_not_own_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(JOBS, "audit", an_entry("audit", "someone-elses-topic"))

    with pytest.raises(ConfigurationError, match="job audit consumes topic 'someone-elses-topic'"):
        topic_specs(Settings())
