"""Dead letters held in memory, beside the in-memory sensor projection."""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.application.ports import DeadLetter, DeadLetterFilter

_Key = tuple[str, int, int]


def dead_letter_matches(letter: DeadLetter, query: DeadLetterFilter) -> bool:
    """Whether `letter` satisfies every condition of `query`."""
    return (
        (query.topic is None or letter.topic == query.topic)
        and (query.partition is None or letter.partition == query.partition)
        and (query.error_class is None or letter.error_class == query.error_class)
        and (query.since is None or letter.last_failed_at >= query.since)
        and (query.until is None or letter.last_failed_at < query.until)
        and (query.from_offset is None or letter.offset >= query.from_offset)
        and (query.to_offset is None or letter.offset < query.to_offset)
    )


class InMemoryDeadLetterStore:
    """DeadLetterStore in a dictionary keyed by where each record was read; filled by
    InMemorySensorStore.apply with the batches' dead letters (the first one of a record is
    kept, as in SQL)."""

    def __init__(self) -> None:
        self._letters: dict[_Key, DeadLetter] = {}

    def add(self, letters: Iterable[DeadLetter]) -> None:
        """Keep `letters`; a record already dead-lettered keeps its first dead letter."""
        for letter in letters:
            self._letters.setdefault((letter.topic, letter.partition, letter.offset), letter)

    async def find_dead_letters(
        self, query: DeadLetterFilter, *, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters matching `query`, by topic, partition and offset."""
        keys = sorted(k for k, v in self._letters.items() if dead_letter_matches(v, query))
        return [self._letters[k] for k in keys[:limit]]

    async def dead_letter(self, topic: str, partition: int, offset: int) -> DeadLetter | None:
        """The dead letter of the record at (topic, partition, offset), if there is one."""
        return self._letters.get((topic, partition, offset))

    async def purge_dead_letters(self, query: DeadLetterFilter) -> int:
        """Delete the dead letters matching `query`; return how many were deleted."""
        doomed = [k for k, v in self._letters.items() if dead_letter_matches(v, query)]
        for key in doomed:
            del self._letters[key]
        return len(doomed)
