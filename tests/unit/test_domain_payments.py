"""Specification of a well-formed payment transaction."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from pipeline.domain import Channel, InvalidTransaction, Transaction, validate_transaction

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def a_transaction(**changes: Any) -> Transaction:
    tx = Transaction(
        transaction_id="tx-1",
        account_id="acct-7",
        amount=Decimal("42.50"),
        currency="EUR",
        merchant="Corner Bakery",
        country="DE",
        channel=Channel.POINT_OF_SALE,
        timestamp=AT,
    )
    return dataclasses.replace(tx, **changes)


def test_well_formed_transaction_is_returned_unchanged() -> None:
    tx = a_transaction()

    assert validate_transaction(tx) is tx


@pytest.mark.parametrize("field", ["transaction_id", "account_id", "merchant"])
def test_empty_identifier_is_rejected(field: str) -> None:
    with pytest.raises(InvalidTransaction, match="must not be empty"):
        validate_transaction(a_transaction(**{field: ""}))


@pytest.mark.parametrize("amount", ["0", "-0.01", "NaN", "sNaN", "Infinity", "-Infinity"])
def test_amount_must_be_positive_and_finite(amount: str) -> None:
    with pytest.raises(InvalidTransaction, match="amount must be positive"):
        validate_transaction(a_transaction(amount=Decimal(amount)))


def test_smallest_positive_amount_is_accepted() -> None:
    tx = a_transaction(amount=Decimal("0.01"))

    assert validate_transaction(tx) is tx


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "€"])
def test_malformed_currency_is_rejected(currency: str) -> None:
    with pytest.raises(InvalidTransaction, match="ISO 4217"):
        validate_transaction(a_transaction(currency=currency))


@pytest.mark.parametrize("country", ["de", "DEU", "D", "D1"])
def test_malformed_country_is_rejected(country: str) -> None:
    with pytest.raises(InvalidTransaction, match="ISO 3166-1"):
        validate_transaction(a_transaction(country=country))


def test_naive_or_non_utc_time_is_a_transaction_error() -> None:
    with pytest.raises(InvalidTransaction, match="no timezone"):
        validate_transaction(a_transaction(timestamp=AT.replace(tzinfo=None)))
    with pytest.raises(InvalidTransaction, match="not in UTC"):
        validate_transaction(a_transaction(timestamp=AT.astimezone(timezone(timedelta(hours=9)))))


def test_channel_values_are_stable_wire_names() -> None:
    assert [channel.value for channel in Channel] == ["online", "pos", "atm", "mobile", "transfer"]
