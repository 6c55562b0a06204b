"""How the application names the topics it derives from a topic: retry topics
(`<topic>.retry.N`), the dead-letter topic (`<topic>.dlq`), the late topic (`<topic>.late`)
and the changelog topics of a job's state (`<group>-<step>-changelog`), and how it creates
them. One place for the rule, so that what one module writes another reads back."""

from __future__ import annotations

import re

from pipeline.application.ports.records import TopicSpec
from pipeline.application.topic_policy import dead_letter_config

DEAD_LETTER_SUFFIX = ".dlq"
LATE_SUFFIX = ".late"
CHANGELOG_SUFFIX = "-changelog"

DERIVED_RECORD_HEADROOM_BYTES = 65_536
"""What a retry or dead-letter copy may add to a record (its `retry.*` or `dlq.*` headers,
bounded in `dead_letters`): derived topics accept records this much larger than their
source topic does, so the copy of a record at the source's size limit still fits."""

_RETRY_TOPIC = re.compile(r"^(?P<topic>.+)\.retry\.(?P<level>[1-9][0-9]*)$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
"""What Kafka accepts as a topic name."""


def retry_topic(topic: str, level: int) -> str:
    """The retry topic of level `level` (1-based) of `topic`."""
    if level < 1:
        raise ValueError(f"retry levels start at 1, not {level}")
    return f"{topic}.retry.{level}"


def retry_level(topic: str) -> tuple[str, int]:
    """(original topic, level) of a topic: level 0 for a topic that is not a retry topic."""
    match = _RETRY_TOPIC.match(topic)
    if match is None:
        return topic, 0
    return match["topic"], int(match["level"])


def dead_letter_topic(topic: str) -> str:
    """The dead-letter topic of `topic`; a retry topic (`<topic>.retry.N`) shares its
    original topic's, the only one the application creates."""
    return retry_level(topic)[0] + DEAD_LETTER_SUFFIX


def late_topic(topic: str) -> str:
    """Where records of `topic` that arrived after their window closed go, unless the job
    routes them itself."""
    return retry_level(topic)[0] + LATE_SUFFIX


_TABLE_STEP = "table:"
"""How the stream engine names the step of a table (`Job.table`)."""


def changelog_topic(group_id: str, step: str) -> str:
    """The compacted topic holding the state of stateful step `step` of the job consuming
    as group `group_id` (one partition per source partition); ValueError if the group or
    step id makes a name Kafka refuses (letters, digits, `.`, `_` and `-` only). A table's
    step, which the engine names `table:<topic>`, has the changelog `<group>-table.<topic>`
    `-changelog`."""
    if step.startswith(_TABLE_STEP):
        step = "table." + step.removeprefix(_TABLE_STEP)
    name = f"{group_id}-{step}{CHANGELOG_SUFFIX}"
    if not _TOPIC_NAME.match(name):
        raise ValueError(
            f"the changelog topic of step {step!r} in group {group_id!r} would be {name!r}: "
            "Kafka topic names take letters, digits, '.', '_' and '-' only, 249 at most"
        )
    return name


def derived_topic_specs(source: TopicSpec, retry_levels: int) -> list[TopicSpec]:
    """The dead-letter topic, the late topic and the `retry_levels` retry topics of
    `source`, partitioned like it (a key keeps its partition) and sized to hold copies of its
    largest records."""

    def derived(name: str, config: dict[str, str]) -> TopicSpec:
        return TopicSpec(
            name=name,
            partitions=source.partitions,
            config=config,
            holds_records_of=source.name,
            headroom_bytes=DERIVED_RECORD_HEADROOM_BYTES,
        )

    # Dead letters and late records keep their original timestamps, which time-based
    # retention would judge expired at once for old records: they stay until purged
    # (`pipeline dlq purge` and the broker's own tools), never silently. A retry record is
    # a record not stored yet: kept as long as its source topic keeps its records.
    kept = dead_letter_config()
    retry = {k: v for k, v in source.config.items() if k in ("cleanup.policy", "retention.ms")}
    return [
        derived(dead_letter_topic(source.name), kept),
        derived(late_topic(source.name), kept),
        *(derived(retry_topic(source.name, level), retry) for level in range(1, retry_levels + 1)),
    ]
