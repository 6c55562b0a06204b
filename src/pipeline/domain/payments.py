"""Payments: transactions, the profiles of the accounts paying, and what happens to a
transaction afterwards (its authorisation, sometimes a chargeback)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pipeline.domain.errors import (
    InvalidAccountProfile,
    InvalidPaymentOutcome,
    InvalidTransaction,
)
from pipeline.domain.money import require_country, require_currency
from pipeline.domain.time import require_utc

_CATEGORY = re.compile(r"^[a-z][a-z_]{0,39}$")


class Channel(StrEnum):
    """Where a payment was made."""

    ONLINE = "online"
    POINT_OF_SALE = "pos"
    ATM = "atm"
    MOBILE = "mobile"
    TRANSFER = "transfer"


CARD_PRESENT = frozenset({Channel.POINT_OF_SALE, Channel.ATM})
"""Channels where the card is where the payment is made: they place the card in a country."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """A payment from an account to a merchant."""

    transaction_id: str
    account_id: str
    amount: Decimal
    currency: str
    merchant: str
    country: str
    channel: Channel
    timestamp: datetime
    merchant_category: str | None = None
    """What the merchant sells (`grocery`, `travel`, …): lower-case letters and `_`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountProfile:
    """What the bank knows of an account: where its holder lives and how they spend."""

    account_id: str
    home_country: str
    currency: str
    segment: str
    """Spending profile (`student`, `everyday`, `affluent`, `business`)."""
    typical_amount: Decimal
    """A typical payment of the account, in its currency (the median of its history)."""
    usual_categories: tuple[str, ...]
    """Merchant categories the account usually pays at."""
    timestamp: datetime
    """When the profile took this state."""


class OutcomeKind(StrEnum):
    """What happened to a transaction after it was made."""

    AUTHORISED = "authorised"
    DECLINED = "declined"
    CHARGEBACK = "chargeback"


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentOutcome:
    """The authorisation decision on a transaction, or a chargeback of it, after the fact."""

    transaction_id: str
    account_id: str
    kind: OutcomeKind
    amount: Decimal
    """The transaction's amount (authorised, declined or charged back)."""
    currency: str
    timestamp: datetime
    """When the outcome happened: after the transaction's own time."""
    reason: str | None = None
    """Why a transaction was declined or charged back (`insufficient_funds`, `fraud`, …)."""


def _require_category(
    category: str, error: type[InvalidTransaction | InvalidAccountProfile]
) -> None:
    if not _CATEGORY.fullmatch(category):
        raise error(f"merchant category {category!r} is not lower-case letters and '_'")


def validate_transaction(tx: Transaction) -> Transaction:
    """Return `tx` if it is well formed, else raise InvalidTransaction naming the rule."""
    if not tx.transaction_id or not tx.account_id or not tx.merchant:
        raise InvalidTransaction("transaction_id, account_id and merchant must not be empty")
    if not tx.amount.is_finite() or tx.amount <= 0:
        raise InvalidTransaction(f"transaction {tx.transaction_id}: amount must be positive")
    require_currency(tx.currency, InvalidTransaction)
    require_country(tx.country, InvalidTransaction)
    if tx.merchant_category is not None:
        _require_category(tx.merchant_category, InvalidTransaction)
    require_utc(tx.timestamp, error=InvalidTransaction)
    return tx


def validate_account_profile(profile: AccountProfile) -> AccountProfile:
    """Return `profile` if it is well formed, else raise InvalidAccountProfile."""
    if not profile.account_id or not profile.segment:
        raise InvalidAccountProfile("account_id and segment must not be empty")
    require_country(profile.home_country, InvalidAccountProfile)
    require_currency(profile.currency, InvalidAccountProfile)
    amount = profile.typical_amount
    if not amount.is_finite() or amount <= 0:
        raise InvalidAccountProfile(
            f"account {profile.account_id}: typical amount must be positive"
        )
    for category in profile.usual_categories:
        _require_category(category, InvalidAccountProfile)
    require_utc(profile.timestamp, error=InvalidAccountProfile)
    return profile


def validate_payment_outcome(outcome: PaymentOutcome) -> PaymentOutcome:
    """Return `outcome` if it is well formed, else raise InvalidPaymentOutcome."""
    if not outcome.transaction_id or not outcome.account_id:
        raise InvalidPaymentOutcome("transaction_id and account_id must not be empty")
    if not outcome.amount.is_finite() or outcome.amount <= 0:
        raise InvalidPaymentOutcome(f"outcome of {outcome.transaction_id}: amount must be positive")
    require_currency(outcome.currency, InvalidPaymentOutcome)
    if outcome.kind is not OutcomeKind.AUTHORISED and not (outcome.reason or "").strip():
        raise InvalidPaymentOutcome(
            f"{outcome.kind} of {outcome.transaction_id} must give a reason"
        )
    require_utc(outcome.timestamp, error=InvalidPaymentOutcome)
    return outcome
