"""The Avro schemas in schemas/: well formed, documented, found at runtime."""

from __future__ import annotations

import json
from typing import Any

import fastavro
import pytest

from pipeline.adapters.avro import (
    ACCOUNT_PROFILE,
    ALERT_RAISED,
    ALERT_RAISED_V1,
    ENGAGEMENT,
    PAYMENT_OUTCOME,
    POST,
    POST_V1,
    SENSOR_AGGREGATE,
    SENSOR_READING,
    SENSOR_READING_V2,
    SHOP_EVENT,
    TRANSACTION,
    TRANSACTION_V1,
    canonical_form,
    load_schema,
    schemas_dir,
)
from pipeline.adapters.avro.social import HASHTAG_USE

SCHEMAS = {
    SENSOR_READING: "io.pipeline.sensors.SensorReading",
    SENSOR_READING_V2: "io.pipeline.sensors.SensorReading",
    ALERT_RAISED_V1: "io.pipeline.alerts.AlertRaised",
    ALERT_RAISED: "io.pipeline.alerts.AlertRaised",
    SHOP_EVENT: "io.pipeline.shop.ShopEvent",
    TRANSACTION_V1: "io.pipeline.payments.Transaction",
    TRANSACTION: "io.pipeline.payments.Transaction",
    ACCOUNT_PROFILE: "io.pipeline.payments.AccountProfile",
    PAYMENT_OUTCOME: "io.pipeline.payments.PaymentOutcome",
    POST_V1: "io.pipeline.social.Post",
    POST: "io.pipeline.social.Post",
    ENGAGEMENT: "io.pipeline.social.Engagement",
    SENSOR_AGGREGATE: "io.pipeline.sensors.SensorAggregate",
    HASHTAG_USE: "io.pipeline.social.HashtagUse",
}


def records_in(node: Any) -> list[dict[str, Any]]:
    """Every record definition nested in a schema."""
    found: list[dict[str, Any]] = []
    if isinstance(node, list):
        for branch in node:
            found += records_in(branch)
    elif isinstance(node, dict):
        if node.get("type") == "record":
            found.append(node)
            for field in node["fields"]:
                found += records_in(field["type"])
        for key in ("type", "items", "values"):
            if isinstance(node.get(key), dict | list):
                found += records_in(node[key])
    return found


def test_every_schema_file_is_loaded_and_nothing_else_is_there() -> None:
    assert {path.name for path in schemas_dir().glob("*.avsc")} == set(SCHEMAS)


@pytest.mark.parametrize(("file_name", "full_name"), SCHEMAS.items())
def test_schema_is_a_namespaced_record(file_name: str, full_name: str) -> None:
    parsed = fastavro.parse_schema(json.loads(load_schema(file_name)))

    assert isinstance(parsed, dict)
    assert parsed["name"] == full_name


@pytest.mark.parametrize("file_name", SCHEMAS)
def test_every_field_and_record_has_a_doc(file_name: str) -> None:
    records = records_in(json.loads(load_schema(file_name)))

    assert records
    for record in records:
        assert record.get("doc"), record["name"]
        undocumented = [f["name"] for f in record["fields"] if not f.get("doc")]
        assert not undocumented, f"{record['name']}: {undocumented}"


@pytest.mark.parametrize("file_name", SCHEMAS)
def test_timestamps_are_timestamp_micros_and_optionals_default_to_null(file_name: str) -> None:
    for record in records_in(json.loads(load_schema(file_name))):
        for field in record["fields"]:
            kind = field["type"]
            if field["name"] == "timestamp":
                assert kind == {"type": "long", "logicalType": "timestamp-micros"}
            if isinstance(kind, list) and "null" in kind:
                assert kind[0] == "null"
                assert "default" in field
                assert field["default"] is None


def test_canonical_form_ignores_formatting_but_not_defaults() -> None:
    text = load_schema(SENSOR_READING)
    schema = json.loads(text)
    changed = json.loads(text)
    changed["fields"][-1]["default"] = None
    changed["fields"][-1]["type"] = ["null", "double"]
    changed["fields"][-1]["doc"] = "another doc"

    assert canonical_form(json.dumps(schema, indent=8)) == canonical_form(text)
    assert canonical_form(changed) != canonical_form(text)
