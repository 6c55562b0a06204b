"""Changelog topics: the durable copy of a job's keyed state under Kafka authority.

Each stateful step of a job consuming as group G has a compacted topic
`G-<step>-changelog` with one partition per source partition: the entry (key, value) of
source partition p lives in changelog partition p, keyed by its serialized key, and a
deletion is a tombstone (value None). Entries are written in the same transaction as the
batch's outputs and offsets, so what a read_committed reader finds in the changelog is
exactly the state after the last committed batch.

`ChangelogReader.read` restores partitions: it waits until no transaction is open on them,
then reads them from the beginning to their end, keeping the latest value per key.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as KafkaTopicPartition

from pipeline.adapters.kafka.admin import KafkaTopicAdmin
from pipeline.adapters.kafka.config import translate
from pipeline.application.errors import BrokerUnavailable
from pipeline.application.kafka_authority import CHANGELOG_CONFIG
from pipeline.application.ports import TopicSpec

log = structlog.get_logger(__name__)

RESTORE_SETTINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "isolation.level": "read_committed",
        "enable.partition.eof": "true",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "earliest",
        # A restore reads a backlog as fast as it can: no waiting for more data at the end,
        # and a local queue deep enough never to pause the fetcher. Fetches stay at 1 MB
        # per partition: the broker sends the next while this one is parsed (16 MB fetches
        # measured 25 % slower over a million entries).
        "fetch.wait.max.ms": "10",
        "queued.max.messages.kbytes": "262144",
        "queued.min.messages": "1000000",
    }
)
_CHUNK = 10_000
_CHUNK_WAIT_S = 0.05
_STABLE_RETRY_S = 0.1

Entries = dict[bytes, bytes]


def changelog_spec(topic: str, partitions: int) -> TopicSpec:
    """The changelog topic `topic` of a job whose sources have `partitions` partitions."""
    return TopicSpec(name=topic, partitions=partitions, config=CHANGELOG_CONFIG)


class ChangelogReader:
    """Restores state from changelog topics with a short-lived read_committed consumer.

    Args:
        settings: librdkafka settings of the restoring consumer (bootstrap servers and
            security; the restore tuning above is applied over them).
        admin: reads the partitions' end offsets.
        wait_open: longest wait, in seconds, for a transaction still open on a partition
            to end (its producer commits it, aborts it, or the coordinator aborts it when
            transaction.timeout.ms passes).
        stall: seconds without any progress after which a restore fails.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        admin: KafkaTopicAdmin,
        *,
        wait_open: float,
        stall: float,
    ) -> None:
        self._settings = {**settings, **RESTORE_SETTINGS}
        self._admin = admin
        self._wait_open = wait_open
        self._stall = stall

    async def read(
        self, topics: Sequence[str], parts: Sequence[int]
    ) -> dict[str, dict[int, Entries]]:
        """The latest value of every live key in partitions `parts` of `topics` (deleted
        keys left out), per topic and partition."""
        started = time.monotonic()
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            for part, end in (await self._stable_ends(topic, parts)).items():
                if end > 0:
                    ends[(topic, part)] = end
        stable = time.monotonic()
        entries = await asyncio.to_thread(self._read, ends)
        log.info(
            "state restored from changelogs",
            entries=sum(len(found) for found in entries.values()),
            partitions=sorted(parts),
            topics=len(topics),
            seconds=round(time.monotonic() - started, 2),
            waiting_for_open_transactions_s=round(stable - started, 2),
        )
        result: dict[str, dict[int, Entries]] = {topic: {p: {} for p in parts} for topic in topics}
        for (topic, part), found in entries.items():
            result[topic][part] = found
        return result

    async def _stable_ends(self, topic: str, parts: Sequence[int]) -> dict[int, int]:
        """Per partition, an end offset that every transaction which had written to it
        when asked has passed: the state of the last committed batch, never a part of it."""
        highs = await self._admin.end_offsets(topic)
        missing = [p for p in parts if p not in highs]
        if missing:
            raise BrokerUnavailable(f"changelog topic {topic!r} has no partition(s) {missing}")
        deadline = time.monotonic() + self._wait_open
        while True:
            stable = await self._admin.last_stable_offsets(topic)
            if all(stable.get(p, -1) >= highs[p] for p in parts):
                return {p: stable[p] for p in parts}
            if time.monotonic() > deadline:
                held = [p for p in parts if stable.get(p, -1) < highs[p]]
                raise BrokerUnavailable(
                    f"a transaction is still open on partition(s) {held} of {topic!r} "
                    f"after {self._wait_open:.0f} s"
                )
            await asyncio.sleep(_STABLE_RETRY_S)

    def _read(self, ends: dict[tuple[str, int], int]) -> dict[tuple[str, int], Entries]:
        """Worker thread: read every partition in `ends` from its beginning to its end.

        One partition at a time: every record a consume returns is then of it, so a chunk
        of them is applied with C-level maps and one dict update, never a Python step per
        record (that step, and sorting interleaved partitions apart, took about as much
        CPU as librdkafka's own work over a million entries)."""
        found: dict[tuple[str, int], Entries] = {where: {} for where in ends}
        if not ends:
            return found
        consumer = Consumer(self._settings)
        # Each record arrives as a Message, an object the cyclic collector tracks: a
        # million of them set it off again and again with nothing to find (a quarter of
        # the read's CPU, measured).
        collecting = gc.isenabled()
        gc.disable()
        try:
            for (topic, part), end in sorted(ends.items()):
                consumer.assign([KafkaTopicPartition(topic, part, OFFSET_BEGINNING)])
                self._drain(consumer, topic, part, end, found[(topic, part)])
                consumer.unassign()
        except KafkaException as exc:
            raise translate(exc, "cannot read the changelog") from exc
        finally:
            if collecting:
                gc.enable()
            consumer.close()
        return found

    def _drain(self, consumer: Consumer, topic: str, part: int, end: int, entries: Entries) -> None:
        """Read partition `part` of `topic` up to `end` into `entries`."""
        stalled_at = time.monotonic() + self._stall
        while True:
            messages = consumer.consume(_CHUNK, _CHUNK_WAIT_S)
            if messages and (_partition(messages[0]) != part or _topic(messages[0]) != topic):
                # Left from the partition read before (librdkafka drops them; never trust).
                messages = [m for m in messages if m.partition() == part and m.topic() == topic]
            if not messages:
                if time.monotonic() > stalled_at:
                    raise BrokerUnavailable(
                        f"the changelog restore made no progress for {self._stall:.0f} s; "
                        f"partition {part} of {topic!r} left"
                    )
                continue
            stalled_at = time.monotonic() + self._stall
            keys = list(map(_key, messages))
            values = list(map(_value, messages))
            if any(map(_error, messages)) or None in keys or None in values:
                if _apply_one_by_one(messages, entries, end):
                    return
                continue
            entries.update(zip(keys, values, strict=True))  # type: ignore[arg-type]
            if (messages[-1].offset() or 0) + 1 >= end:
                return


def _apply_one_by_one(messages: Sequence[Message], entries: Entries, end: int) -> bool:
    """A chunk holding tombstones, keyless records or the partition's EOF event; True once
    the partition's end is reached."""
    for message in messages:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            # EOF: the fetch reached the partition's last stable offset.
            if (message.offset() or 0) >= end:
                return True
            continue
        key, value = message.key(), message.value()
        if key is None:
            continue
        if value is None:
            entries.pop(key, None)
        else:
            entries[key] = value
        if (message.offset() or 0) + 1 >= end:
            return True
    return False


_topic = Message.topic
_partition = Message.partition
_key = Message.key
_value = Message.value
_error = Message.error
