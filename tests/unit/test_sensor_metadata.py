"""Per-sensor metadata from the reference table: its limits over its type's, and the decoders
of the rows Debezium streams (JSON, flattened; deleted rows and tombstones decode to None)."""

from __future__ import annotations

import json

import pytest

from pipeline.adapters.connect.debezium import sensor_metadata_key, sensor_metadata_value
from pipeline.application.errors import MalformedPayload
from pipeline.domain import SensorMetadata, Threshold


def test_a_sensors_own_limits_replace_its_types_bound_by_bound() -> None:
    base = Threshold(
        sensor_type="temperature", low=-10, high=45, critical_low=-30, critical_high=70
    )
    metadata = SensorMetadata(sensor_id="t-1", high=30.0, critical_low=-5.0)

    assert metadata.threshold_over(base) == Threshold(
        sensor_type="temperature", low=-10, high=30.0, critical_low=-5.0, critical_high=70
    )


def row(**fields: object) -> bytes:
    return json.dumps({"sensor_id": "t-1", "location": "site-1", **fields}).encode()


def test_a_row_decodes_to_sensor_metadata() -> None:
    value = row(low=None, high=40.0, critical_low=None, critical_high=55, updated_at="…")

    assert sensor_metadata_value(value) == SensorMetadata(
        sensor_id="t-1", location="site-1", high=40.0, critical_high=55.0
    )
    assert sensor_metadata_key(b'{"sensor_id": "t-1"}') == "t-1"


@pytest.mark.parametrize("deleted", [row(__deleted="true"), b"null"])
def test_a_deleted_row_decodes_to_none(deleted: bytes) -> None:
    assert sensor_metadata_value(deleted) is None


@pytest.mark.parametrize(
    "value",
    [
        b"{not json",
        b"[1, 2]",
        row(sensor_id=""),
        row(high="forty"),
        row(high=True),
        row(location=3),
    ],
)
def test_a_malformed_row_is_refused(value: bytes) -> None:
    with pytest.raises(MalformedPayload):
        sensor_metadata_value(value)


@pytest.mark.parametrize("key", [b"t-1", b'{"id": "t-1"}', b'{"sensor_id": 7}'])
def test_a_malformed_key_is_refused(key: bytes) -> None:
    with pytest.raises(MalformedPayload):
        sensor_metadata_key(key)
