"""The fixed-rate bench's producer: one process serves every phase, so no phase's readings go
through a producer still getting its producer id (`entrypoints/bench_producer.py`)."""

from __future__ import annotations

import pytest

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.entrypoints.bench_producer import serve
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.settings import Settings


async def a_pipeline(log: InMemoryEventLog) -> Pipeline:
    return await bootstrap(
        Settings(), log=log, registry=InMemorySchemaRegistry(), store=InMemorySensorStore()
    )


async def readings_in(log: InMemoryEventLog, pipeline: Pipeline) -> int:
    return sum((await log.end_offsets(pipeline.settings.topics.sensor_readings)).values())


async def test_one_producer_produces_every_command_in_turn_and_answers_each() -> None:
    log = InMemoryEventLog()
    pipeline = await a_pipeline(log)
    commands = ["40 0 1", "25 2000 2"]
    answers: list[str] = []
    stored_when_answered: list[int] = []

    async def command() -> str:
        if answers:  # the next command is read once the previous one was answered
            stored_when_answered.append(await readings_in(log, pipeline))
        return f"{commands.pop(0)}\n" if commands else ""

    try:
        await serve(pipeline, sensors=5, command=command, answer=answers.append)
    finally:
        await pipeline.aclose()

    assert answers == ["done 40", "done 25"]
    assert stored_when_answered == [40, 65]


async def test_a_malformed_command_is_an_error_not_a_phase() -> None:
    log = InMemoryEventLog()
    pipeline = await a_pipeline(log)
    commands = iter(["40 fast\n"])

    async def command() -> str:
        return next(commands)

    try:
        with pytest.raises(ValueError, match="not enough values"):
            await serve(pipeline, sensors=5, command=command, answer=lambda _: None)
        stored = await readings_in(log, pipeline)
    finally:
        await pipeline.aclose()
    assert stored == 0
