"""Avro on the wire: the event schemas, their mappings and the Confluent wire-format codec."""

from pipeline.adapters.avro.aggregates import aggregate_codec
from pipeline.adapters.avro.codec import AvroCodec, value_subject
from pipeline.adapters.avro.compatibility import compatibility_problem, read_problem
from pipeline.adapters.avro.factories import (
    alert_codec,
    post_codec,
    reading_codec,
    shop_event_codec,
    transaction_codec,
)
from pipeline.adapters.avro.schemas import (
    ALERT_RAISED,
    POST,
    SENSOR_AGGREGATE,
    SENSOR_READING,
    SENSOR_READING_V2,
    SENSOR_READING_VERSIONS,
    SHOP_EVENT,
    TRANSACTION,
    canonical_form,
    load_schema,
    schemas_dir,
)

__all__ = [
    "ALERT_RAISED",
    "POST",
    "SENSOR_AGGREGATE",
    "SENSOR_READING",
    "SENSOR_READING_V2",
    "SENSOR_READING_VERSIONS",
    "SHOP_EVENT",
    "TRANSACTION",
    "AvroCodec",
    "aggregate_codec",
    "alert_codec",
    "canonical_form",
    "compatibility_problem",
    "load_schema",
    "post_codec",
    "read_problem",
    "reading_codec",
    "schemas_dir",
    "shop_event_codec",
    "transaction_codec",
    "value_subject",
]
