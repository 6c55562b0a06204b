"""How the application names the topics it derives from a topic: retry topics
(`<topic>.retry.N`), the dead-letter topic (`<topic>.dlq`) and the late topic
(`<topic>.late`). One place for the rule, so
that what one module writes another reads back."""

from __future__ import annotations

import re

DEAD_LETTER_SUFFIX = ".dlq"
LATE_SUFFIX = ".late"

_RETRY_TOPIC = re.compile(r"^(?P<topic>.+)\.retry\.(?P<level>[1-9][0-9]*)$")


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
