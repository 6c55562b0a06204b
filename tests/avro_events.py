"""Sample events of every type carried as Avro, for the codec tests."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import fastavro

from pipeline.adapters.avro import SENSOR_READING, load_schema
from pipeline.adapters.avro.schemas import parse
from pipeline.domain.alerts import Alert, AlertKind, Severity, alert_id_for
from pipeline.domain.payments import (
    AccountProfile,
    Channel,
    OutcomeKind,
    PaymentOutcome,
    Transaction,
)
from pipeline.domain.sensors import Reading
from pipeline.domain.shop import Order, OrderLine, ShopEvent, ShopEventType
from pipeline.domain.social import Engagement, EngagementKind, Post

T0 = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)


def reading(i: int = 0, **changes: Any) -> Reading:
    fields: dict[str, Any] = {
        "sensor_id": f"sensor-{i % 50:03d}",
        "sensor_type": "temperature",
        "value": 20.0 + (i % 13) * 0.25,
        "unit": "celsius",
        "timestamp": T0 + timedelta(milliseconds=i),
        "location": "warehouse-3/aisle-7",
        "battery_level": None if i % 3 else 88.5,
        "signal_strength": -67.0,
    }
    fields.update(changes)
    return Reading(**fields)


def alert() -> Alert:
    return Alert(
        alert_id=alert_id_for("sensor-007", T0, AlertKind.THRESHOLD_HIGH),
        source="sensor-007",
        kind=AlertKind.THRESHOLD_HIGH,
        severity=Severity.CRITICAL,
        message="temperature 81 celsius above critical threshold 70",
        timestamp=T0,
        sensor_type="temperature",
        value=81.0,
        threshold=70.0,
    )


def bare_alert() -> Alert:
    return Alert(
        alert_id=alert_id_for("acct-1", T0, AlertKind.THRESHOLD_LOW),
        source="acct-1",
        kind=AlertKind.THRESHOLD_LOW,
        severity=Severity.WARNING,
        message="balance low",
        timestamp=T0,
    )


def shop_events() -> list[ShopEvent]:
    common: dict[str, Any] = {"session_id": "sess-1", "user_id": "user-9", "timestamp": T0}
    order = Order(
        order_id="order-1",
        lines=(
            OrderLine(product_id="p-1", quantity=2, unit_price=Decimal("19.99")),
            OrderLine(product_id="p-2", quantity=1, unit_price=Decimal("0.0001")),
        ),
        currency="EUR",
        **common,
    )
    return [
        ShopEvent(event_id="e-1", event_type=ShopEventType.PAGE_VIEW, product_id="p-1", **common),
        ShopEvent(
            event_id="e-2",
            event_type=ShopEventType.ADD_TO_CART,
            product_id="p-1",
            quantity=2,
            price=Decimal("19.99"),
            **common,
        ),
        ShopEvent(event_id="e-3", event_type=ShopEventType.SEARCH, query="red shoes", **common),
        ShopEvent(event_id="e-4", event_type=ShopEventType.PURCHASE, order=order, **common),
    ]


def transaction() -> Transaction:
    return Transaction(
        transaction_id="tx-1",
        account_id="acct-1",
        amount=Decimal("12345678901234.5678"),
        currency="USD",
        merchant="Corner Shop",
        country="US",
        channel=Channel.POINT_OF_SALE,
        timestamp=T0,
    )


def transfer() -> Transaction:
    return Transaction(
        transaction_id="tx-2",
        account_id="acct-1",
        amount=Decimal("250.00"),
        currency="EUR",
        merchant="utilities-de-001",
        country="DE",
        channel=Channel.TRANSFER,
        timestamp=T0,
        merchant_category="utilities",
    )


def post() -> Post:
    return Post(
        post_id="post-1",
        author="ada",
        text="Streaming at #Scale with #kafka ✨ @grace",
        hashtags=("scale", "kafka"),
        timestamp=T0,
        mentions=("grace",),
    )


def account_profile() -> AccountProfile:
    return AccountProfile(
        account_id="acct-1",
        home_country="DE",
        currency="EUR",
        segment="everyday",
        typical_amount=Decimal("41.20"),
        usual_categories=("grocery", "fuel"),
        timestamp=T0,
    )


def payment_outcomes() -> list[PaymentOutcome]:
    common: dict[str, Any] = {
        "transaction_id": "tx-1",
        "account_id": "acct-1",
        "amount": Decimal("12.50"),
        "currency": "EUR",
        "timestamp": T0,
    }
    return [
        PaymentOutcome(kind=OutcomeKind.AUTHORISED, **common),
        PaymentOutcome(kind=OutcomeKind.CHARGEBACK, reason="fraud", **common),
    ]


def engagement() -> Engagement:
    return Engagement(
        engagement_id="post-1-e1",
        post_id="post-1",
        user="grace",
        kind=EngagementKind.SHARE,
        timestamp=T0,
    )


def reading_schema_v2() -> str:
    """The reading schema with one more optional field: a BACKWARD- and FORWARD-compatible
    evolution of v1."""
    schema = json.loads(load_schema(SENSOR_READING))
    schema["fields"].append(
        {
            "name": "firmware",
            "type": ["null", "string"],
            "default": None,
            "doc": "Firmware version of the sensor.",
        }
    )
    return json.dumps(schema)


def rewritten(record: dict[str, object], writer: str, reader: str) -> dict[str, object]:
    """`record` written with schema file `writer` and read back with schema file `reader`
    (Avro schema resolution, as a consumer with another version reads it)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parse(load_schema(writer)), record)
    buffer.seek(0)
    result: dict[str, object] = fastavro.schemaless_reader(
        buffer, parse(load_schema(writer)), parse(load_schema(reader))
    )
    return result
