"""Pure mappings between domain events and the Avro records of `schemas/*.avsc`.

`*_to_avro` builds the dict fastavro writes; `*_from_avro` builds the event from the dict
fastavro (or the compiled reader) returns. Timestamps go on the wire as exact integer
microseconds and come back as tz-aware UTC datetimes; enums travel as their values; money as
Avro decimals (scale 4). The `from` side trusts the shapes the reader schema guarantees and
lets a mismatch raise (KeyError, TypeError, ValueError): the codec turns that into
MalformedPayload.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.alerts import Alert, AlertDomain, AlertKind, Severity
from pipeline.domain.payments import (
    AccountProfile,
    Channel,
    OutcomeKind,
    PaymentOutcome,
    Transaction,
)
from pipeline.domain.sensor_columns import ReadingRow, reading_of
from pipeline.domain.sensors import Reading
from pipeline.domain.shop import Order, OrderLine, ShopEvent, ShopEventType
from pipeline.domain.social import Engagement, EngagementKind, Post
from pipeline.domain.time import from_epoch_micros, to_epoch_micros

AvroRecord = dict[str, Any]


def _utc(value: object) -> datetime:
    """A timestamp-micros value as a tz-aware UTC datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is UTC:
            return value
        if value.tzinfo is None:  # fastavro gives naive datetimes for local-timestamp types
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, int):  # a writer schema without the logical type
        return from_epoch_micros(value)
    raise TypeError(f"expected a timestamp, got {type(value).__name__}")


def _uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):  # a writer schema without the logical type
        return uuid.UUID(value)
    raise TypeError(f"expected a uuid, got {type(value).__name__}")


def reading_to_avro(reading: Reading) -> AvroRecord:
    """The `io.pipeline.sensors.SensorReading` record of `reading`."""
    return {
        "sensor_id": reading.sensor_id,
        "sensor_type": reading.sensor_type,
        "value": reading.value,
        "unit": reading.unit,
        "timestamp": to_epoch_micros(reading.timestamp),
        "location": reading.location,
        "battery_level": reading.battery_level,
        "signal_strength": reading.signal_strength,
    }


def reading_from_avro(record: Mapping[str, Any]) -> Reading:
    """The reading in a `SensorReading` record."""
    return Reading(
        sensor_id=record["sensor_id"],
        sensor_type=record["sensor_type"],
        value=record["value"],
        unit=record["unit"],
        timestamp=_utc(record["timestamp"]),
        location=record["location"],
        battery_level=record.get("battery_level"),
        signal_strength=record.get("signal_strength"),
    )


SHARED_STRINGS = 4096
"""Most distinct strings a row reader shares before it starts afresh (see
`reading_row_reader`)."""


def reading_row_reader() -> Callable[[Mapping[str, Any]], ReadingRow]:
    """A function giving the row of a `SensorReading` record: the reading's fields, no
    `Reading` built (the sensors job's hot path; see `pipeline.domain.sensor_columns`).

    fastavro makes a new str of every string it reads; a batch's readings repeat a few
    sensors, types, units and locations, so the reader gives equal strings as one object
    (four strings a reading: about 220 bytes each of the two or three batches a worker holds
    at once, and dictionary lookups by identical keys). It remembers at most
    `SHARED_STRINGS` of them and forgets them all when it has that many: a fleet larger
    than that costs a dictionary insert per string, never unbounded memory."""
    seen: dict[str, str] = {}
    shared = seen.setdefault
    make = ReadingRow._make  # the fields in order, without the generated __new__'s call

    def row(record: Mapping[str, Any]) -> ReadingRow:
        if len(seen) >= SHARED_STRINGS:
            seen.clear()
        timestamp = record["timestamp"]
        if type(timestamp) is not datetime or timestamp.tzinfo is not UTC:
            timestamp = _utc(timestamp)
        sensor = record["sensor_id"]
        kind = record["sensor_type"]
        unit = record["unit"]
        place = record["location"]
        return make(
            (
                shared(sensor, sensor),
                shared(kind, kind),
                record["value"],
                shared(unit, unit),
                timestamp,
                shared(place, place),
                record.get("battery_level"),
                record.get("signal_strength"),
            )
        )

    return row


def reading_row_to_avro(row: ReadingRow) -> AvroRecord:
    """The `SensorReading` record of a row."""
    return reading_to_avro(reading_of(row))


def alert_to_avro(alert: Alert) -> AvroRecord:
    """The `io.pipeline.alerts.AlertRaised` record of `alert`."""
    return {
        "alert_id": str(alert.alert_id),
        "source": alert.source,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "message": alert.message,
        "timestamp": to_epoch_micros(alert.timestamp),
        "sensor_type": alert.sensor_type,
        "value": alert.value,
        "threshold": alert.threshold,
        "domain": alert.domain.value,
        "score": alert.score,
        "reasons": list(alert.reasons),
        "model_version": alert.model_version,
        "features": dict(alert.features),
    }


def alert_from_avro(record: Mapping[str, Any]) -> Alert:
    """The alert in an `AlertRaised` record."""
    return Alert(
        alert_id=_uuid(record["alert_id"]),
        source=record["source"],
        kind=AlertKind(record["kind"]),
        severity=Severity(record["severity"]),
        message=record["message"],
        timestamp=_utc(record["timestamp"]),
        sensor_type=record.get("sensor_type"),
        value=record.get("value"),
        threshold=record.get("threshold"),
        domain=AlertDomain(record.get("domain", AlertDomain.SENSORS.value)),
        score=record.get("score"),
        reasons=tuple(record.get("reasons", ())),
        model_version=record.get("model_version"),
        features=dict(record.get("features", {})),
    )


def _order_to_avro(order: Order) -> AvroRecord:
    return {
        "order_id": order.order_id,
        "session_id": order.session_id,
        "user_id": order.user_id,
        "lines": [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
            }
            for line in order.lines
        ],
        "currency": order.currency,
        "timestamp": to_epoch_micros(order.timestamp),
    }


def _order_from_avro(record: Mapping[str, Any]) -> Order:
    return Order(
        order_id=record["order_id"],
        session_id=record["session_id"],
        user_id=record["user_id"],
        lines=tuple(
            OrderLine(
                product_id=line["product_id"],
                quantity=line["quantity"],
                unit_price=line["unit_price"],
            )
            for line in record["lines"]
        ),
        currency=record["currency"],
        timestamp=_utc(record["timestamp"]),
    )


def shop_event_to_avro(event: ShopEvent) -> AvroRecord:
    """The `io.pipeline.shop.ShopEvent` record of `event`."""
    return {
        "event_id": event.event_id,
        "event_type": event.event_type.value,
        "session_id": event.session_id,
        "user_id": event.user_id,
        "timestamp": to_epoch_micros(event.timestamp),
        "product_id": event.product_id,
        "quantity": event.quantity,
        "price": event.price,
        "query": event.query,
        "order": None if event.order is None else _order_to_avro(event.order),
    }


def shop_event_from_avro(record: Mapping[str, Any]) -> ShopEvent:
    """The shop event in a `ShopEvent` record."""
    order = record.get("order")
    return ShopEvent(
        event_id=record["event_id"],
        event_type=ShopEventType(record["event_type"]),
        session_id=record["session_id"],
        user_id=record["user_id"],
        timestamp=_utc(record["timestamp"]),
        product_id=record.get("product_id"),
        quantity=record.get("quantity"),
        price=record.get("price"),
        query=record.get("query"),
        order=None if order is None else _order_from_avro(order),
    )


def transaction_to_avro(tx: Transaction) -> AvroRecord:
    """The `io.pipeline.payments.Transaction` record of `tx`."""
    return {
        "transaction_id": tx.transaction_id,
        "account_id": tx.account_id,
        "amount": tx.amount,
        "currency": tx.currency,
        "merchant": tx.merchant,
        "country": tx.country,
        "channel": tx.channel.value,
        "timestamp": to_epoch_micros(tx.timestamp),
        "merchant_category": tx.merchant_category,
    }


def transaction_from_avro(record: Mapping[str, Any]) -> Transaction:
    """The transaction in a `Transaction` record."""
    return Transaction(
        transaction_id=record["transaction_id"],
        account_id=record["account_id"],
        amount=record["amount"],
        currency=record["currency"],
        merchant=record["merchant"],
        country=record["country"],
        channel=Channel(record["channel"]),
        timestamp=_utc(record["timestamp"]),
        merchant_category=record.get("merchant_category"),
    )


def post_to_avro(post: Post) -> AvroRecord:
    """The `io.pipeline.social.Post` record of `post`."""
    return {
        "post_id": post.post_id,
        "author": post.author,
        "text": post.text,
        "hashtags": list(post.hashtags),
        "mentions": list(post.mentions),
        "timestamp": to_epoch_micros(post.timestamp),
    }


def post_from_avro(record: Mapping[str, Any]) -> Post:
    """The post in a `Post` record."""
    return Post(
        post_id=record["post_id"],
        author=record["author"],
        text=record["text"],
        hashtags=tuple(record["hashtags"]),
        timestamp=_utc(record["timestamp"]),
        mentions=tuple(record.get("mentions", ())),
    )


def account_profile_to_avro(profile: AccountProfile) -> AvroRecord:
    """The `io.pipeline.payments.AccountProfile` record of `profile`."""
    return {
        "account_id": profile.account_id,
        "home_country": profile.home_country,
        "currency": profile.currency,
        "segment": profile.segment,
        "typical_amount": profile.typical_amount,
        "usual_categories": list(profile.usual_categories),
        "timestamp": to_epoch_micros(profile.timestamp),
    }


def account_profile_from_avro(record: Mapping[str, Any]) -> AccountProfile:
    """The profile in an `AccountProfile` record."""
    return AccountProfile(
        account_id=record["account_id"],
        home_country=record["home_country"],
        currency=record["currency"],
        segment=record["segment"],
        typical_amount=record["typical_amount"],
        usual_categories=tuple(record["usual_categories"]),
        timestamp=_utc(record["timestamp"]),
    )


def payment_outcome_to_avro(outcome: PaymentOutcome) -> AvroRecord:
    """The `io.pipeline.payments.PaymentOutcome` record of `outcome`."""
    return {
        "transaction_id": outcome.transaction_id,
        "account_id": outcome.account_id,
        "kind": outcome.kind.value,
        "amount": outcome.amount,
        "currency": outcome.currency,
        "timestamp": to_epoch_micros(outcome.timestamp),
        "reason": outcome.reason,
    }


def payment_outcome_from_avro(record: Mapping[str, Any]) -> PaymentOutcome:
    """The outcome in a `PaymentOutcome` record."""
    return PaymentOutcome(
        transaction_id=record["transaction_id"],
        account_id=record["account_id"],
        kind=OutcomeKind(record["kind"]),
        amount=record["amount"],
        currency=record["currency"],
        timestamp=_utc(record["timestamp"]),
        reason=record.get("reason"),
    )


def engagement_to_avro(engagement: Engagement) -> AvroRecord:
    """The `io.pipeline.social.Engagement` record of `engagement`."""
    return {
        "engagement_id": engagement.engagement_id,
        "post_id": engagement.post_id,
        "user": engagement.user,
        "kind": engagement.kind.value,
        "timestamp": to_epoch_micros(engagement.timestamp),
    }


def engagement_from_avro(record: Mapping[str, Any]) -> Engagement:
    """The engagement in an `Engagement` record."""
    return Engagement(
        engagement_id=record["engagement_id"],
        post_id=record["post_id"],
        user=record["user"],
        kind=EngagementKind(record["kind"]),
        timestamp=_utc(record["timestamp"]),
    )
