"""What the topics the application creates keep, by kind of topic.

- `EVENTS` (readings, shop events, transactions, alerts, …): kept `retention_hours`
  (default 7 days).
- `RETRY` (`<topic>.retry.N`): kept as long as events, since a retry record not handled yet
  is a record not stored yet.
- `DEAD_LETTERS` (`<topic>.dlq`, and `<topic>.late`): kept until purged (`retention.ms=-1`).
- `CHANGELOG` (reference tables streamed by Kafka Connect): compacted, the latest value of
  every key kept for ever.

Replication (factor and `min.insync.replicas`) is the event log adapter's business: it
depends on the cluster, not on the kind of topic.
"""

from __future__ import annotations

from enum import StrEnum

_DAY_MS = 86_400_000


class TopicKind(StrEnum):
    """The kinds of topic the application owns."""

    EVENTS = "events"
    RETRY = "retry"
    DEAD_LETTERS = "dead_letters"
    CHANGELOG = "changelog"


def topic_config(kind: TopicKind, *, retention_hours: float) -> dict[str, str]:
    """The topic-level configuration a topic of `kind` is created with."""
    if kind in (TopicKind.EVENTS, TopicKind.RETRY):
        return {"cleanup.policy": "delete", "retention.ms": str(int(retention_hours * 3_600_000))}
    if kind is TopicKind.DEAD_LETTERS:
        return dead_letter_config()
    # A changelog keeps the latest value of every key for ever, and drops a key's older
    # values once their segment is closed: daily segments keep what a table reader replays
    # small even when no more than a few rows change a day.
    return {"cleanup.policy": "compact", "segment.ms": str(_DAY_MS)}


def dead_letter_config() -> dict[str, str]:
    """Dead letters (and late records) keep their original, possibly old, timestamps, which
    time-based retention would judge expired at once: they stay until purged, never
    silently."""
    return {"cleanup.policy": "delete", "retention.ms": "-1"}
