"""Currency and country codes shared by the shop and payment domains."""

from __future__ import annotations

import re

from pipeline.domain.errors import DomainError

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def require_currency(code: str, error: type[DomainError]) -> str:
    """Return `code` if it has the shape of an ISO 4217 code, else raise `error`."""
    if not _CURRENCY.fullmatch(code):
        raise error(f"currency {code!r} is not a three-letter ISO 4217 code")
    return code


def require_country(code: str, error: type[DomainError]) -> str:
    """Return `code` if it has the shape of an ISO 3166-1 alpha-2 code, else raise `error`."""
    if not _COUNTRY.fullmatch(code):
        raise error(f"country {code!r} is not a two-letter ISO 3166-1 code")
    return code
