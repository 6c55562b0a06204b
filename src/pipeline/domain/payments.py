"""Payment transactions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pipeline.domain.errors import InvalidTransaction
from pipeline.domain.money import require_country, require_currency
from pipeline.domain.time import require_utc


class Channel(StrEnum):
    """Where a payment was made."""

    ONLINE = "online"
    POINT_OF_SALE = "pos"
    ATM = "atm"
    MOBILE = "mobile"


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


def validate_transaction(tx: Transaction) -> Transaction:
    """Return `tx` if it is well formed, else raise InvalidTransaction naming the rule."""
    if not tx.transaction_id or not tx.account_id or not tx.merchant:
        raise InvalidTransaction("transaction_id, account_id and merchant must not be empty")
    if not tx.amount.is_finite() or tx.amount <= 0:
        raise InvalidTransaction(f"transaction {tx.transaction_id}: amount must be positive")
    require_currency(tx.currency, InvalidTransaction)
    require_country(tx.country, InvalidTransaction)
    require_utc(tx.timestamp, error=InvalidTransaction)
    return tx
