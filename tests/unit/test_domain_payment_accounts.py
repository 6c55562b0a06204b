"""Specification of account profiles, payment outcomes, merchant categories and the geography
the fraud rules use."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.domain import (
    InvalidAccountProfile,
    InvalidPaymentOutcome,
    InvalidTransaction,
    OutcomeKind,
    validate_account_profile,
    validate_payment_outcome,
    validate_transaction,
)
from pipeline.domain.geography import COUNTRIES, distance_km, local_hour, travel_is_impossible
from tests.avro_events import account_profile, payment_outcomes, transfer

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_well_formed_profile_and_outcomes_are_returned_unchanged() -> None:
    profile = account_profile()

    assert validate_account_profile(profile) is profile
    for outcome in payment_outcomes():
        assert validate_payment_outcome(outcome) is outcome


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"account_id": ""}, "must not be empty"),
        ({"home_country": "Germany"}, "ISO 3166-1"),
        ({"currency": "euro"}, "ISO 4217"),
        ({"typical_amount": Decimal(0)}, "must be positive"),
        ({"typical_amount": Decimal("NaN")}, "must be positive"),
        ({"usual_categories": ("Grocery Stores",)}, "lower-case"),
    ],
)
def test_malformed_profile_is_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidAccountProfile, match=message):
        validate_account_profile(dataclasses.replace(account_profile(), **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"transaction_id": ""}, "must not be empty"),
        ({"amount": Decimal("-1")}, "must be positive"),
        ({"kind": OutcomeKind.DECLINED, "reason": None}, "must give a reason"),
        ({"kind": OutcomeKind.CHARGEBACK, "reason": " "}, "must give a reason"),
    ],
)
def test_malformed_outcome_is_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPaymentOutcome, match=message):
        validate_payment_outcome(dataclasses.replace(payment_outcomes()[0], **changes))  # type: ignore[arg-type]


def test_merchant_category_must_be_a_lower_case_word() -> None:
    assert validate_transaction(transfer()).merchant_category == "utilities"
    with pytest.raises(InvalidTransaction, match="lower-case"):
        validate_transaction(dataclasses.replace(transfer(), merchant_category="Gas Station"))


def test_distances_between_countries_are_great_circle_kilometres() -> None:
    assert distance_km(COUNTRIES["DE"], COUNTRIES["DE"]) == 0.0
    assert distance_km(COUNTRIES["FR"], COUNTRIES["DE"]) == pytest.approx(790, rel=0.05)
    assert distance_km(COUNTRIES["GB"], COUNTRIES["AU"]) == pytest.approx(15_200, rel=0.05)


def test_travel_is_impossible_when_faster_than_an_airliner() -> None:
    germany, japan = COUNTRIES["DE"], COUNTRIES["JP"]
    hours = distance_km(germany, japan) / 1_000.0

    assert travel_is_impossible(germany, japan, hours * 3600 * 0.9)
    assert not travel_is_impossible(germany, japan, hours * 3600 * 1.1)
    assert not travel_is_impossible(germany, germany, 0.0)
    assert travel_is_impossible(germany, japan, 0.0)


def test_local_hour_applies_the_countrys_offset() -> None:
    assert local_hour(COUNTRIES["JP"], AT) == 21.0
    assert local_hour(COUNTRIES["US"], AT) == 6.0
    assert local_hour(COUNTRIES["IN"], AT) == 17.5


def test_every_country_code_and_currency_has_the_iso_shape() -> None:
    for code, country in COUNTRIES.items():
        assert code == country.code
        assert len(code) == 2
        assert code.isupper()
        assert len(country.currency) == 3
