"""Codecs of the pipeline's event types, one per topic (TopicNameStrategy subjects)."""

from __future__ import annotations

from pipeline.adapters.avro.codec import AvroCodec, value_subject
from pipeline.adapters.avro.mapping import (
    account_profile_from_avro,
    account_profile_to_avro,
    alert_from_avro,
    alert_to_avro,
    engagement_from_avro,
    engagement_to_avro,
    payment_outcome_from_avro,
    payment_outcome_to_avro,
    post_from_avro,
    post_to_avro,
    reading_from_avro,
    reading_row_reader,
    reading_row_to_avro,
    reading_to_avro,
    shop_event_from_avro,
    shop_event_to_avro,
    transaction_from_avro,
    transaction_to_avro,
)
from pipeline.adapters.avro.schemas import (
    ACCOUNT_PROFILE,
    ALERT_RAISED,
    ENGAGEMENT,
    PAYMENT_OUTCOME,
    POST,
    SENSOR_READING,
    SHOP_EVENT,
    TRANSACTION,
    load_schema,
)
from pipeline.application.ports import SchemaRegistry
from pipeline.domain.alerts import Alert
from pipeline.domain.payments import AccountProfile, PaymentOutcome, Transaction
from pipeline.domain.sensor_columns import ReadingRow
from pipeline.domain.sensors import Reading
from pipeline.domain.shop import ShopEvent
from pipeline.domain.social import Engagement, Post


def reading_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[Reading]:
    """The codec of sensor readings on `topic` (schema `io.pipeline.sensors.SensorReading`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(SENSOR_READING),
        to_avro=reading_to_avro,
        from_avro=reading_from_avro,
    )


def reading_row_codec(
    registry: SchemaRegistry, topic: str, *, native: bool = True
) -> AvroCodec[ReadingRow]:
    """The codec of sensor readings on `topic` decoding to rows, not `Reading`s (the
    sensors job's source; same schema and subject as `reading_codec`). `native`: records of
    its own schema are decoded by the compiled core where it is installed."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(SENSOR_READING),
        to_avro=reading_row_to_avro,
        from_avro=reading_row_reader(),
        from_values=ReadingRow._make if native else None,
    )


def alert_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[Alert]:
    """The codec of alerts on `topic` (schema `io.pipeline.alerts.AlertRaised`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(ALERT_RAISED),
        to_avro=alert_to_avro,
        from_avro=alert_from_avro,
    )


def shop_event_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[ShopEvent]:
    """The codec of e-commerce events on `topic` (schema `io.pipeline.shop.ShopEvent`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(SHOP_EVENT),
        to_avro=shop_event_to_avro,
        from_avro=shop_event_from_avro,
    )


def transaction_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[Transaction]:
    """The codec of payment transactions on `topic` (schema
    `io.pipeline.payments.Transaction`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(TRANSACTION),
        to_avro=transaction_to_avro,
        from_avro=transaction_from_avro,
    )


def post_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[Post]:
    """The codec of social posts on `topic` (schema `io.pipeline.social.Post`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(POST),
        to_avro=post_to_avro,
        from_avro=post_from_avro,
    )


def account_profile_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[AccountProfile]:
    """The codec of account profiles on `topic` (schema
    `io.pipeline.payments.AccountProfile`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(ACCOUNT_PROFILE),
        to_avro=account_profile_to_avro,
        from_avro=account_profile_from_avro,
    )


def payment_outcome_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[PaymentOutcome]:
    """The codec of authorisations and chargebacks on `topic` (schema
    `io.pipeline.payments.PaymentOutcome`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(PAYMENT_OUTCOME),
        to_avro=payment_outcome_to_avro,
        from_avro=payment_outcome_from_avro,
    )


def engagement_codec(registry: SchemaRegistry, topic: str) -> AvroCodec[Engagement]:
    """The codec of likes and shares on `topic` (schema `io.pipeline.social.Engagement`)."""
    return AvroCodec(
        registry=registry,
        subject=value_subject(topic),
        schema=load_schema(ENGAGEMENT),
        to_avro=engagement_to_avro,
        from_avro=engagement_from_avro,
    )
