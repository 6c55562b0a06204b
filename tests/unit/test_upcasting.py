"""Upcasting: pure functions turn older event records into the current version's shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pipeline.adapters.avro.mapping import reading_to_avro
from pipeline.application.upcasting import (
    DEFAULT_UPCASTERS,
    SENSOR_READING,
    EventRecord,
    Upcasters,
    sensor_reading_v1_to_v2,
)
from tests.avro_events import reading


def test_sensor_reading_is_currently_at_version_2() -> None:
    assert DEFAULT_UPCASTERS.current_version(SENSOR_READING) == 2


def test_v1_reading_gets_a_null_firmware_version() -> None:
    v1 = reading_to_avro(reading(1))

    current = DEFAULT_UPCASTERS.upcast(SENSOR_READING, 1, v1)

    assert current == {**v1, "firmware_version": None}


def test_upcasting_leaves_its_input_unchanged() -> None:
    v1 = reading_to_avro(reading(2))
    before = dict(v1)

    sensor_reading_v1_to_v2(v1)
    DEFAULT_UPCASTERS.upcast(SENSOR_READING, 1, v1)

    assert v1 == before


def test_a_current_record_is_returned_as_an_equal_copy() -> None:
    v2 = {**reading_to_avro(reading(3)), "firmware_version": "3.1.0"}

    current = DEFAULT_UPCASTERS.upcast(SENSOR_READING, 2, v2)

    assert current == v2
    assert current is not v2


def test_steps_are_chained_up_to_the_current_version() -> None:
    def rename(record: Mapping[str, Any]) -> EventRecord:
        result = dict(record)
        result["name"] = result.pop("title")
        return result

    def add_tags(record: Mapping[str, Any]) -> EventRecord:
        return {**record, "tags": []}

    upcasters = Upcasters().with_step("io.test.Doc", 1, rename)
    upcasters = upcasters.with_step("io.test.Doc", 2, add_tags)

    assert upcasters.upcast("io.test.Doc", 1, {"title": "x"}) == {"name": "x", "tags": []}
    assert upcasters.upcast("io.test.Doc", 2, {"name": "y"}) == {"name": "y", "tags": []}


def test_a_schema_without_steps_is_at_version_1_and_passes_through() -> None:
    assert DEFAULT_UPCASTERS.upcast("io.test.Unknown", 1, {"a": 1}) == {"a": 1}


@pytest.mark.parametrize("version", [0, 3])
def test_a_version_that_does_not_exist_is_refused(version: int) -> None:
    with pytest.raises(ValueError, match=f"no version {version}"):
        DEFAULT_UPCASTERS.upcast(SENSOR_READING, version, {})


def test_a_missing_step_is_refused() -> None:
    upcasters = Upcasters().with_step("io.test.Doc", 2, dict)

    with pytest.raises(ValueError, match="no upcaster from version 1 to 2"):
        upcasters.upcast("io.test.Doc", 1, {})
