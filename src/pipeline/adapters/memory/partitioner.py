"""Kafka's default key partitioner, so the in-memory log places keys where Kafka would.

Kafka's Java client (`BuiltInPartitioner`) and librdkafka's `murmur2_random` partitioner
both map a key to `(murmur2(key) & 0x7fffffff) % partition_count`, with the 32-bit
MurmurHash2 variant and seed below. `KafkaEventLog` configures librdkafka with
`partitioner=murmur2_random`, so a key lands in the same partition number in memory, in
Kafka from Python, and in Kafka from a Java producer.
"""

from __future__ import annotations

import struct
from functools import lru_cache

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """The 32-bit MurmurHash2 of `data` as Kafka computes it, as an unsigned int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length & ~3
    for (word,) in _WORDS.iter_unpack(data[:tail]):
        k = (word * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= data[tail + 2] << 16
        if rest >= 2:
            h ^= data[tail + 1] << 8
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@lru_cache(maxsize=65_536)
def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for `key` among `partitions`.

    Cached because a stream has far fewer distinct keys (sensor ids, accounts) than records.
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions
