"""The error tree of pipeline. Every error the library raises derives from `PipelineError`.

    PipelineError
    ├── DomainError                      a domain rule was broken (the event is invalid)
    │   ├── InvalidReading
    │   │   ├── UnknownSensorType        sensor type not in the catalog
    │   │   ├── ReadingOutOfRange        physically impossible value for its sensor type
    │   │   ├── UnitMismatch             unit does not match the sensor type's unit
    │   │   ├── EventTimeInFuture        event time too far ahead of the processing clock
    │   │   ├── EventTimeNotUtc          event time without a UTC offset
    │   │   ├── BatteryLevelOutOfRange   battery level outside 0..100 %
    │   │   ├── SignalStrengthOutOfRange signal strength outside -150..0 dBm
    │   │   ├── MissingIdentifier        an empty id or name
    │   │   └── MalformedIdentifier      an id or name too long or with control characters
    │   ├── InvalidShopEvent             negative price/quantity, purchase without items, …
    │   │   ├── ShopEventInFuture        event time too far ahead of the processing clock
    │   │   └── UnsupportedCurrency      a purchase in a currency the shop has no rate for
    │   ├── InvalidTransaction           non-positive amount, bad currency/country code, …
    │   ├── InvalidAccountProfile        bad home country, non-positive typical amount, …
    │   ├── InvalidPaymentOutcome        an authorisation or chargeback without its transaction
    │   ├── InvalidPost                  empty or over-long text, malformed hashtag
    │   └── InvalidEngagement            a like or share without its post or user
    └── (application and adapter errors, see pipeline.application.errors)

Domain errors carry a stable `rule` name, used as the error class in logs, counters and
dead-letter headers.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error pipeline raises."""


class DomainError(PipelineError):
    """A domain rule was broken; the event is invalid and retrying it cannot help."""

    rule: str = "domain_rule"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidReading(DomainError):
    """A sensor reading breaks a rule."""

    rule = "invalid_reading"


class UnknownSensorType(InvalidReading):
    """The sensor type is not in the sensor catalog."""

    rule = "unknown_sensor_type"


class ReadingOutOfRange(InvalidReading):
    """The value is physically impossible for the sensor type."""

    rule = "reading_out_of_range"


class UnitMismatch(InvalidReading):
    """The unit does not match the unit of the sensor type."""

    rule = "unit_mismatch"


class EventTimeInFuture(InvalidReading):
    """The event time lies further in the future than the allowed clock skew."""

    rule = "event_time_in_future"


class EventTimeNotUtc(InvalidReading):
    """The event time is naive or not expressed in UTC."""

    rule = "event_time_not_utc"


class BatteryLevelOutOfRange(InvalidReading):
    """The battery level is outside 0..100 percent."""

    rule = "battery_level_out_of_range"


class SignalStrengthOutOfRange(InvalidReading):
    """The signal strength is outside -150..0 dBm."""

    rule = "signal_strength_out_of_range"


class MissingIdentifier(InvalidReading):
    """An identifier (sensor id, location) is empty."""

    rule = "missing_identifier"


class MalformedIdentifier(InvalidReading):
    """An identifier is too long or contains control characters (which no store accepts)."""

    rule = "malformed_identifier"


class InvalidShopEvent(DomainError):
    """An e-commerce event breaks a rule."""

    rule = "invalid_shop_event"


class ShopEventInFuture(InvalidShopEvent):
    """The event time lies further in the future than the allowed clock skew."""

    rule = "shop_event_in_future"


class UnsupportedCurrency(InvalidShopEvent):
    """A purchase in a currency the shop has no reference rate for."""

    rule = "unsupported_currency"


class InvalidTransaction(DomainError):
    """A payment transaction breaks a rule."""

    rule = "invalid_transaction"


class InvalidPost(DomainError):
    """A social post breaks a rule."""

    rule = "invalid_post"


class InvalidAccountProfile(DomainError):
    """A payment account's profile breaks a rule."""

    rule = "invalid_account_profile"


class InvalidPaymentOutcome(DomainError):
    """An authorisation or chargeback event breaks a rule."""

    rule = "invalid_payment_outcome"


class InvalidEngagement(DomainError):
    """A like or share of a post breaks a rule."""

    rule = "invalid_engagement"
