"""`KafkaGroupRewind`: moves a stopped consumer group of a job under Kafka authority back,
with its state, in one transaction (see `pipeline.application.runtime.rewind`).

The offsets are committed with the transaction as a consumer outside group management
commits them (generation -1, no member id): the group coordinator accepts that only while
the group has no member, so a worker that joins while the rewind is being written makes
the whole transaction abort — tombstones included — instead of racing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaException

from pipeline.adapters.kafka.admin import KafkaTopicAdmin
from pipeline.adapters.kafka.changelog import ChangelogReader
from pipeline.adapters.kafka.config import translate
from pipeline.adapters.kafka.txn_producer import KafkaTransactionalProducer
from pipeline.application.errors import Fenced, GroupActive, ProducerFenced
from pipeline.application.kafka_authority import OutRecord
from pipeline.application.ports import TopicPartition


class KafkaGroupRewind:
    """One rewind of consumer group `group_id` (see `GroupRewinding.rewind_group`).

    Args:
        admin: describes the group, settles and reads its offsets, counts partitions.
        changelogs: reads the live keys of the changelog partitions to tombstone.
        producer: a transactional producer of its own (transactional.id
            `<group>-rewind`).
        consumer_settings: librdkafka settings of a consumer of the group that never
            joins it: its group metadata goes with the offsets.
    """

    def __init__(
        self,
        group_id: str,
        *,
        admin: KafkaTopicAdmin,
        changelogs: ChangelogReader,
        producer: KafkaTransactionalProducer,
        consumer_settings: dict[str, Any],
    ) -> None:
        self._group_id = group_id
        self._admin = admin
        self._reader = changelogs
        self._producer = producer
        self._consumer_settings = {**consumer_settings, "group.id": group_id}

    async def run(
        self,
        offsets: Mapping[TopicPartition, int],
        changelogs: Sequence[str],
        state: Sequence[OutRecord],
    ) -> int:
        """Tombstone the partitions' changelog entries, write `state`, commit `offsets`;
        return how many keys were tombstoned."""
        group = self._group_id
        await self._refuse_members()
        # Settles a transaction a killed member left open on these offsets first.
        await self._admin.committed_offsets(group, list(offsets))
        parts = sorted({tp.partition for tp in offsets})
        topics = [t for t in changelogs if await self._admin.partition_count(t)]
        found = await self._reader.read(topics, parts) if topics else {}
        tombstones = [
            OutRecord(topic, part, key, None)
            for topic, per_part in sorted(found.items())
            for part, entries in sorted(per_part.items())
            for key in entries
        ]
        consumer = Consumer(self._consumer_settings)
        try:
            await self._producer.start()
            await self._producer.transact(
                object(),
                [*tombstones, *state],
                offsets,
                consumer.consumer_group_metadata,
                lambda: True,
            )
        except ProducerFenced:
            raise
        except Fenced as exc:
            raise GroupActive(
                f"a member joined consumer group {group!r} while it was being rewound: "
                f"nothing was changed; stop the job's workers and run the replay again ({exc})"
            ) from exc
        except KafkaException as exc:
            raise translate(exc, f"cannot rewind consumer group {group!r}") from exc
        finally:
            await asyncio.to_thread(consumer.close)
            await self._producer.close()
        return len(tombstones)

    async def _refuse_members(self) -> None:
        members = await self._admin.group_members(self._group_id)
        if members:
            raise GroupActive(
                f"consumer group {self._group_id!r} has {len(members)} active member(s) "
                f"({', '.join(members)}): stop the job's workers (`pipeline-worker`) first, "
                "then run the replay again"
            )
