"""`KafkaTopicAdmin`: topic creation, end offsets and group offsets for the Kafka adapters."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar, cast

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._listoffsets import OffsetSpec
from confluent_kafka.admin._metadata import ClusterMetadata, TopicMetadata
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from pipeline.adapters.kafka.config import (
    BROKER_DOWN_CODES,
    LEADERSHIP_MOVING,
    kafka_error_of,
    translate,
)
from pipeline.adapters.kafka.connection import ConnectionWatch
from pipeline.adapters.kafka.logs import WHAT_TO_CHECK, KafkaLogs, with_logs
from pipeline.application.errors import BrokerUnavailable, ConfigurationError
from pipeline.application.ports import (
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    TopicPartition,
    TopicSpec,
)

T = TypeVar("T")

_RETRY_S = 0.1
"""Pause between two metadata checks while a new topic's partitions get leaders, or while
deleted topics are still listed."""
_ATTEMPT_S: Final = 5.0
"""Longest one metadata or ListOffsets attempt waits: a request sent to a broker that just
died waits for its timeout, and only a new attempt asks another broker (the partition's new
leader)."""
_WATCH_S: Final = 0.1
"""How often the first request looks at the connection errors librdkafka reported."""
_OFFSETS_PENDING = frozenset(
    {
        KafkaError.UNSTABLE_OFFSET_COMMIT,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)
"""Errors of a group offset fetch worth retrying: a transaction holding offsets of the
partitions is still open, or the group coordinator is moving."""

log = structlog.get_logger(__name__)


class _Seen(NamedTuple):
    """A topic in the metadata: its partitions (none if it does not exist), and whether
    every one of them has a leader."""

    partitions: list[int]
    led: bool


class KafkaTopicAdmin:
    """Creates topics and reads high watermarks through a librdkafka AdminClient.

    Its first request waits at most `connect_timeout` seconds for a broker to answer, and
    raises BrokerUnavailable saying which address and what to check if none does: the
    first thing every command does with Kafka is through here (creating its topics, reading
    end offsets), so a command pointed at no broker stops with one line, not after a
    minute of librdkafka's retries. When what librdkafka reports meanwhile shows that the
    settings cannot work (refused credentials, an untrusted certificate, a listener speaking
    another protocol), it stops at once with a ConfigurationError that says which setting to
    check (see `ConnectionWatch`).

    Created topics are replicated `replication_factor` times (below 1: derived from the
    cluster, `min(3, brokers)`) with `min.insync.replicas` = `min_insync_replicas` (below 1:
    2 from three replicas up, else 1), so that with three brokers an acknowledged record is
    on two of them and losing one broker neither loses records nor stops writes."""

    def __init__(
        self,
        settings: dict[str, Any],
        logs: KafkaLogs,
        *,
        replication_factor: int,
        timeout: float,
        connect_timeout: float,
        min_insync_replicas: int = -1,
    ) -> None:
        self._watch = ConnectionWatch(settings)
        self._logs = logs
        config = {**with_logs(settings, logs), "error_cb": self._on_error}
        try:
            self._admin = AdminClient(config)
        except KafkaException as exc:
            raise ConfigurationError(f"invalid Kafka client settings: {_detail(exc)}") from exc
        self._min_insync_replicas = min_insync_replicas
        self._servers = str(settings["bootstrap.servers"])
        self._replication_factor = replication_factor
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._reached = False

    async def _reach(self) -> None:
        """Return once a broker has answered; raise BrokerUnavailable if none does within
        the connect timeout."""
        if self._reached:
            return
        try:
            # A future, not a blocking call: it is given up as soon as the watch tells.
            await self._watched(
                asyncio.wrap_future(
                    self._admin.describe_cluster(request_timeout=self._connect_timeout)
                )
            )
        except KafkaException as exc:
            error = kafka_error_of(exc)
            # Its logs and errors, served only by poll(), say why (refused, unresolved, TLS,
            # SASL); the error raised here says it, once.
            with self._logs.held():
                self._admin.poll(0)
            why = self._logs.last_failure or (error.str() if error is not None else str(exc))
            raise BrokerUnavailable(
                f"no connection to the Kafka brokers at {self._servers} succeeded within "
                f"{self._connect_timeout:g} s ({why}); {WHAT_TO_CHECK}"
            ) from exc
        self._reached = True
        self._logs.reachable()

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create the topics that do not exist yet and wait until the broker has them.

        A topic that already exists is left as it is, whatever its partition count, except
        that one holding copies of another topic's records (`holds_records_of`) is sized
        after it: created with, or raised to, that topic's `max.message.bytes` plus its
        headroom. Should the broker refuse to raise it (no ALTER_CONFIGS permission), that
        is logged and the topic is left as it is.
        """
        for spec in specs:
            if spec.partitions < 1:
                raise ConfigurationError(
                    f"topic {spec.name!r} needs at least 1 partition, not {spec.partitions}"
                )
        if not specs:
            return
        await self._reach()
        # One round for what exists (a worker's start waits for it): the cluster's topics in
        # one metadata request, then the sizes of the sources and of the copies in one
        # DescribeConfigs; more only for a topic that must be created or raised.
        seen = await self._seen([spec.name for spec in specs])
        own = [spec for spec in specs if spec.holds_records_of is None]
        # Only those missing: a principal that may see the topics but not create them (see
        # `pipeline acls`) starts once an administrator created them.
        await self._create_missing(own, seen)
        derived = [spec for spec in specs if spec.holds_records_of is not None]
        if not derived:
            return
        sources = {str(spec.holds_records_of) for spec in derived}
        present = {spec.name for spec in derived if _exists(seen[spec.name])}
        limits = await self._max_message_bytes(sorted(sources | present))
        sized = [
            dataclasses.replace(
                spec,
                config={
                    **spec.config,
                    MAX_MESSAGE_BYTES: str(
                        limits[str(spec.holds_records_of)] + spec.headroom_bytes
                    ),
                },
            )
            for spec in derived
        ]
        existing = await self._create_missing(sized, seen)
        await self._make_room([spec for spec in sized if spec.name in existing], limits)

    async def _create_missing(
        self, specs: Sequence[TopicSpec], seen: Mapping[str, _Seen | None]
    ) -> set[str]:
        """Create those of `specs` that do not exist as `seen` (see `_seen`) and wait until
        every partition has a leader; return the names of those that existed. A topic seen
        with every partition led is not asked again."""
        existing = {spec.name for spec in specs if _exists(seen[spec.name])}
        existing |= await self._create([spec for spec in specs if spec.name not in existing])
        await self._wait_for_leaders(
            [spec for spec in specs if (topic := seen[spec.name]) is None or not topic.led]
        )
        return existing

    async def _wait_for_leaders(self, specs: Sequence[TopicSpec]) -> None:
        # The controller acknowledges before every partition has a leader; clients that
        # use the topic at once would see NOT_LEADER errors, so wait for the leaders.
        deadline = time.monotonic() + self._timeout

        async def led(spec: TopicSpec) -> None:
            while await self._partitions(spec.name, need_leaders=True) is None:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"topic {spec.name!r} has no partition leaders yet")
                await asyncio.sleep(_RETRY_S)

        await asyncio.gather(*(led(spec) for spec in specs))

    async def _create(self, specs: Sequence[TopicSpec]) -> set[str]:
        """Create `specs`; return the names of those that existed already."""
        if not specs:
            return set()
        factor, in_sync = await self.replication()
        new_topics = [
            NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=factor,
                config={"min.insync.replicas": str(in_sync), **spec.config},
            )
            for spec in specs
        ]
        try:
            futures = self._admin.create_topics(
                new_topics, operation_timeout=self._timeout, request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise translate(exc, "cannot create topics") from exc
        existing = set()
        for name, future in futures.items():
            try:
                await asyncio.wrap_future(future)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    existing.add(name)
                    continue
                if error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                    raise ConfigurationError(
                        f"cannot create topic {name!r}: this Kafka principal may not create "
                        "topics. Create them with `pipeline topics create` as a principal "
                        "that may (an administrator), then start again."
                    ) from exc
                raise translate(exc, f"cannot create topic {name!r}") from exc
        return existing

    async def delete_topics(self, names: Sequence[str]) -> None:
        """Delete the topics of `names` that exist, with their records, and return once the
        metadata no longer lists them (so that creating one of them again makes a new, empty
        topic); names that do not exist are ignored."""
        if not names:
            return
        await self._reach()
        seen = await self._seen(list(names))
        present = [name for name in names if _exists(seen[name])]
        if not present:
            return
        try:
            futures = self._admin.delete_topics(
                present, operation_timeout=self._timeout, request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise translate(exc, "cannot delete topics") from exc
        for name, future in futures.items():
            try:
                await asyncio.wrap_future(future)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is None or error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise translate(exc, f"cannot delete topic {name!r}") from exc
        deadline = asyncio.get_running_loop().time() + self._timeout
        while any(map(_exists, (await self._seen(present)).values())):
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerUnavailable(
                    f"the topics {', '.join(present)} were still listed {self._timeout:g} s "
                    "after their deletion"
                )
            await asyncio.sleep(_RETRY_S)

    async def replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of the topics it creates."""
        factor = self._replication_factor
        if factor < 1:
            factor = min(3, await self._broker_count())
        in_sync = self._min_insync_replicas
        if in_sync < 1:
            in_sync = 2 if factor >= 3 else 1
        return factor, in_sync

    async def _broker_count(self) -> int:
        """The brokers the cluster has now (a broker that is down is not counted)."""
        try:
            cluster = await asyncio.wrap_future(
                self._admin.describe_cluster(request_timeout=self._timeout)
            )
        except KafkaException as exc:
            raise translate(exc, "cannot describe the Kafka cluster") from exc
        return max(1, len(cluster.nodes))

    async def _max_message_bytes(self, topics: Sequence[str]) -> dict[str, int]:
        """The `max.message.bytes` of each topic (the broker's default where it has none),
        asked again while a broker does not know a topic just created yet."""
        deadline = time.monotonic() + self._timeout
        limits: dict[str, int] = {}
        while True:
            left = [topic for topic in topics if topic not in limits]
            resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in left]
            try:
                futures = self._admin.describe_configs(resources, request_timeout=self._timeout)
            except KafkaException as exc:
                raise translate(exc, "cannot read topic configurations") from exc
            for resource, future in futures.items():
                try:
                    entries = await asyncio.wrap_future(future)
                except KafkaException as exc:
                    error = kafka_error_of(exc)
                    moving = error is not None and error.code() in LEADERSHIP_MOVING
                    if moving and time.monotonic() < deadline:
                        continue
                    raise translate(
                        exc, f"cannot read the configuration of topic {resource.name!r}"
                    ) from exc
                entry = entries.get(MAX_MESSAGE_BYTES)
                value = entry.value if entry is not None else None
                limits[resource.name] = int(value) if value else DEFAULT_MAX_MESSAGE_BYTES
            if len(limits) == len(topics):
                return limits
            await asyncio.sleep(_RETRY_S)

    async def _make_room(self, specs: Sequence[TopicSpec], known: Mapping[str, int]) -> None:
        """Raise the `max.message.bytes` of existing topics that are below their spec's
        (`known`: limits already read; the others are asked for)."""
        if not specs:
            return
        unknown = [spec.name for spec in specs if spec.name not in known]
        current = {**known, **(await self._max_message_bytes(unknown) if unknown else {})}
        needed = {spec.name: int(spec.config[MAX_MESSAGE_BYTES]) for spec in specs}
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(
                        MAX_MESSAGE_BYTES,
                        str(limit),
                        incremental_operation=AlterConfigOpType.SET,
                    )
                ],
            )
            for name, limit in needed.items()
            if current[name] < limit
        ]
        if not resources:
            return
        try:
            futures = self._admin.incremental_alter_configs(
                resources, request_timeout=self._timeout
            )
        except KafkaException as exc:
            raise translate(exc, "cannot alter topic configurations") from exc
        for resource, future in futures.items():
            name = resource.name
            try:
                await asyncio.wrap_future(future)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is not None and (error.retriable() or error.code() in BROKER_DOWN_CODES):
                    raise translate(exc, f"cannot alter topic {name!r}") from exc
                # Refused (permissions, policy): dead letters too large for it are then
                # published without their value, which the dead_letters table keeps.
                log.warning(
                    "cannot raise max.message.bytes of a topic",
                    topic=name,
                    current=current[name],
                    needed=needed[name],
                    error=error.str() if error is not None else str(exc),
                )
                continue
            log.info(
                "raised max.message.bytes of a topic",
                topic=name,
                before=current[name],
                after=needed[name],
            )

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """The high watermark of every partition of `topic` (empty if it does not exist).

        One ListOffsets request for all partitions rather than one watermark query each;
        retried while the partitions' leadership is moving.
        """
        await self._reach()
        return await self._end_offsets(topic, IsolationLevel.READ_UNCOMMITTED)

    async def last_stable_offsets(self, topic: str) -> dict[int, int]:
        """The last stable offset of every partition of `topic`: where a read_committed
        consumer stops, before the first record of a transaction still open (the high
        watermark when none is)."""
        return await self._end_offsets(topic, IsolationLevel.READ_COMMITTED)

    async def partition_count(self, topic: str) -> int:
        """How many partitions `topic` has (0 if it does not exist)."""
        return len(await self._known_partitions(topic))

    async def committed_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition], *, stable: bool = True
    ) -> dict[TopicPartition, int]:
        """The offsets group `group_id` committed for `partitions` (those it never committed
        are left out). `stable`: wait while a transaction that commits offsets of theirs is
        still open, so that what is returned is final, never about to change."""
        if not partitions:
            return {}
        request = [
            ConsumerGroupTopicPartitions(
                group_id, [KafkaTopicPartition(tp.topic, tp.partition) for tp in partitions]
            )
        ]
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                futures = self._admin.list_consumer_group_offsets(
                    request, require_stable=stable, request_timeout=self._timeout
                )
                answer = await asyncio.wrap_future(futures[group_id])
                pending = [tp for tp in answer.topic_partitions if tp.error is not None]
                if not pending:
                    return {
                        TopicPartition(tp.topic, tp.partition): tp.offset
                        for tp in answer.topic_partitions
                        if tp.offset >= 0
                    }
                error = pending[0].error
            except KafkaException as exc:
                error = kafka_error_of(exc)
                if error is None or error.code() not in _OFFSETS_PENDING:
                    raise translate(exc, f"cannot read the offsets of group {group_id!r}") from exc
            if error.code() not in _OFFSETS_PENDING or time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"cannot read the offsets of group {group_id!r}: {error.str()}"
                )
            await asyncio.sleep(_RETRY_S)

    async def group_members(self, group_id: str) -> list[str]:
        """The live members of consumer group `group_id` (client id @ host), none if it
        is empty or unknown."""
        await self._reach()
        try:
            futures = self._admin.describe_consumer_groups(
                [group_id], request_timeout=self._timeout
            )
            group = await asyncio.wrap_future(futures[group_id])
        except KafkaException as exc:
            raise translate(exc, f"cannot describe consumer group {group_id!r}") from exc
        return sorted(f"{m.client_id}@{m.host}" for m in group.members)

    async def _end_offsets(self, topic: str, isolation: IsolationLevel) -> dict[int, int]:
        deadline = time.monotonic() + self._timeout
        while True:
            partitions = await self._known_partitions(topic)
            if not partitions:
                return {}
            try:
                return await self._latest_offsets(topic, partitions, isolation)
            except KafkaException as exc:
                error = kafka_error_of(exc)
                moving = error is not None and (
                    error.retriable()
                    or error.code() in LEADERSHIP_MOVING
                    or error.code() in BROKER_DOWN_CODES
                )
                if not moving or time.monotonic() > deadline:
                    raise translate(exc, f"cannot read the end offsets of {topic!r}") from exc
            await asyncio.sleep(_RETRY_S)

    async def offsets_for_time(self, topic: str, timestamp_ms: int) -> dict[int, int]:
        """Per partition of `topic`, the first offset whose timestamp is at or after
        `timestamp_ms` (the end offset when there is none)."""
        partitions = await self._known_partitions(topic)
        if not partitions:
            return {}
        spec = OffsetSpec.for_timestamp(timestamp_ms)
        try:
            found = await self._list_offsets(topic, partitions, spec)
            ends = await self._latest_offsets(topic, partitions, IsolationLevel.READ_UNCOMMITTED)
        except KafkaException as exc:
            raise translate(exc, f"cannot look up offsets of {topic!r} by time") from exc
        return {p: found[p] if found[p] >= 0 else ends[p] for p in partitions}

    async def _known_partitions(self, topic: str) -> list[int]:
        """The partition numbers of `topic` ([] if it does not exist), asked again while no
        broker answers, up to the timeout."""
        deadline = time.monotonic() + self._timeout
        while (partitions := await self._partitions(topic, need_leaders=False)) is None:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"cannot read the metadata of topic {topic!r}")
            await asyncio.sleep(_RETRY_S)
        return partitions

    async def _partitions(self, topic: str, *, need_leaders: bool) -> list[int] | None:
        """The partition numbers of `topic` ([] if it does not exist), or None while the
        metadata is incomplete, no broker answered or (with `need_leaders`) a partition of
        the topic (or the topic itself) has no leader yet."""
        seen = await self._probe(topic)
        if seen is None or (need_leaders and not seen.led):
            return None
        return seen.partitions

    async def _seen(self, topics: Sequence[str]) -> dict[str, _Seen | None]:
        """What the metadata says of each of `topics` (see `_probe`): the cluster's topics
        in one request; a topic it does not list (absent, or hidden from this principal)
        is then asked for by name, all at once, to tell which."""
        listed = await self._metadata(None)
        seen: dict[str, _Seen | None] = {}
        if listed is not None:
            for topic in topics:
                described = listed.topics.get(topic)
                if described is not None:
                    seen[topic] = _seen_of(topic, described)
        unlisted = [topic for topic in topics if topic not in seen]
        probed = await asyncio.gather(*(self._probe(topic) for topic in unlisted))
        return seen | dict(zip(unlisted, probed, strict=True))

    async def _probe(self, topic: str) -> _Seen | None:
        """What the metadata says of `topic` (no partitions if it does not exist), or None
        while it is incomplete or no broker answered."""
        metadata = await self._metadata(topic)
        if metadata is None:
            return None
        return _seen_of(topic, metadata.topics.get(topic))

    async def _metadata(self, topic: str | None) -> ClusterMetadata | None:
        """The metadata of `topic` (None: of every topic this principal may see), or None
        when no broker answered.

        A Metadata request goes to any broker, in attempts of at most 5 s (librdkafka's
        DescribeTopics waits for the controller it last knew, which after that broker died
        stays unknown for minutes)."""
        try:
            return await asyncio.to_thread(
                self._admin.list_topics, topic, min(self._timeout, _ATTEMPT_S)
            )
        except KafkaException as exc:
            error = kafka_error_of(exc)
            if error is not None and (error.retriable() or error.code() in BROKER_DOWN_CODES):
                return None
            what = f"topic {topic!r}" if topic is not None else "the cluster's topics"
            raise translate(exc, f"cannot read the metadata of {what}") from exc
        finally:
            self._admin.poll(0)  # hand its logs and errors over

    async def _latest_offsets(
        self, topic: str, partitions: list[int], isolation: IsolationLevel
    ) -> dict[int, int]:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        return await self._list_offsets(topic, partitions, latest, isolation)

    async def _list_offsets(
        self,
        topic: str,
        partitions: list[int],
        spec: OffsetSpec,
        isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
    ) -> dict[int, int]:
        request: dict[KafkaTopicPartition, OffsetSpec] = {
            KafkaTopicPartition(topic, number): spec for number in partitions
        }
        futures = self._admin.list_offsets(
            request,
            isolation_level=isolation,
            request_timeout=min(self._timeout, _ATTEMPT_S),
        )
        return {
            # cast: the types-confluent-kafka stubs lack ListOffsetsResultInfo.offset
            tp.partition: int(cast(Any, await asyncio.wrap_future(future)).offset)
            for tp, future in futures.items()
        }

    def _on_error(self, error: KafkaError) -> None:
        """librdkafka's `error_cb`: what the watch and the logs make of it."""
        self._watch.on_error(error)
        self._logs.error(error)

    async def _watched(self, pending: Awaitable[T]) -> T:
        """`pending`'s result; a ConfigurationError as soon as the connection errors
        librdkafka reports meanwhile show that the settings cannot work."""
        task = asyncio.ensure_future(pending)
        while True:
            done, _ = await asyncio.wait({task}, timeout=_WATCH_S)
            if done:
                self._watch.answered()
                return task.result()
            with self._logs.held():
                self._admin.poll(0)  # serves error_cb
            problem = self._watch.problem()
            if problem is None and self._watch.probe_due():
                problem = await asyncio.to_thread(self._watch.probe)
            if problem is not None:
                task.cancel()
                raise problem


def _exists(seen: _Seen | None) -> bool:
    return seen is not None and bool(seen.partitions)


def _seen_of(topic: str, described: TopicMetadata | None) -> _Seen | None:
    """A topic's metadata as `_Seen` (no partitions: it does not exist), or None while it
    is incomplete; raises when this principal may not use it or it cannot be read."""
    if described is None:
        return _Seen([], led=False)
    if described.error is not None:
        code = described.error.code()
        if code == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return _Seen([], led=False)
        if code == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            raise ConfigurationError(
                f"this Kafka principal may not use topic {topic!r} "
                "(TOPIC_AUTHORIZATION_FAILED): grant it the ACLs `pipeline acls` lists"
            )
        if described.error.retriable() or code in LEADERSHIP_MOVING:
            return None
        raise BrokerUnavailable(
            f"cannot read the metadata of topic {topic!r}: {described.error.str()}"
        )
    partitions = described.partitions
    led = bool(partitions) and all(p.leader >= 0 and p.error is None for p in partitions.values())
    return _Seen(sorted(partitions), led=led)


def _detail(exc: KafkaException) -> str:
    error = kafka_error_of(exc)
    text = error.str() if error is not None else str(exc)
    return text.removeprefix("Failed to create admin client: ")
