"""The pipeline domain: events, rules and event-time logic, in the standard library only.

Other services embed this package on its own: importing it pulls in no Kafka, SQL or web code.
"""

from pipeline.domain.alerts import (
    DEFAULT_THRESHOLDS,
    Alert,
    AlertKind,
    Severity,
    Threshold,
    alert_id_for,
    check_thresholds,
    thresholds_by_type,
)
from pipeline.domain.errors import (
    BatteryLevelOutOfRange,
    DomainError,
    EventTimeInFuture,
    EventTimeNotUtc,
    InvalidPost,
    InvalidReading,
    InvalidShopEvent,
    InvalidTransaction,
    MalformedIdentifier,
    MissingIdentifier,
    PipelineError,
    ReadingOutOfRange,
    SignalStrengthOutOfRange,
    UnitMismatch,
    UnknownSensorType,
)
from pipeline.domain.payments import Channel, Transaction, validate_transaction
from pipeline.domain.sensor_metadata import SensorMetadata
from pipeline.domain.sensors import (
    DEFAULT_CATALOG,
    HUMIDITY,
    PRESSURE,
    TEMPERATURE,
    Reading,
    SensorCatalog,
    SensorKind,
    validate_reading,
)
from pipeline.domain.shop import Order, OrderLine, ShopEvent, ShopEventType, validate_shop_event
from pipeline.domain.social import Post, hashtags_in, validate_post
from pipeline.domain.windows import ONE_MINUTE, WindowAggregate

__all__ = [
    "DEFAULT_CATALOG",
    "DEFAULT_THRESHOLDS",
    "HUMIDITY",
    "ONE_MINUTE",
    "PRESSURE",
    "TEMPERATURE",
    "Alert",
    "AlertKind",
    "BatteryLevelOutOfRange",
    "Channel",
    "DomainError",
    "EventTimeInFuture",
    "EventTimeNotUtc",
    "InvalidPost",
    "InvalidReading",
    "InvalidShopEvent",
    "InvalidTransaction",
    "MalformedIdentifier",
    "MissingIdentifier",
    "Order",
    "OrderLine",
    "PipelineError",
    "Post",
    "Reading",
    "ReadingOutOfRange",
    "SensorCatalog",
    "SensorKind",
    "SensorMetadata",
    "Severity",
    "ShopEvent",
    "ShopEventType",
    "SignalStrengthOutOfRange",
    "Threshold",
    "Transaction",
    "UnitMismatch",
    "UnknownSensorType",
    "WindowAggregate",
    "alert_id_for",
    "check_thresholds",
    "hashtags_in",
    "thresholds_by_type",
    "validate_post",
    "validate_reading",
    "validate_shop_event",
    "validate_transaction",
]
