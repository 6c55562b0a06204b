"""Builders of shop events for the shop job's tests (driver, runtime, API)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

from pipeline.domain import Order, OrderLine, ShopEvent, ShopEventType

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
"""A five-minute (and hour) boundary."""

_ids = count(1)


def _event(event_type: ShopEventType, session: str, at: datetime, **fields: object) -> ShopEvent:
    return ShopEvent(
        event_id=f"evt-{next(_ids)}",
        event_type=event_type,
        session_id=session,
        user_id=f"user-of-{session}",
        timestamp=at,
        **fields,  # type: ignore[arg-type]
    )


def a_search(session: str, at: datetime, query: str = "lamp") -> ShopEvent:
    return _event(ShopEventType.SEARCH, session, at, query=query)


def a_view(session: str, at: datetime, product: str = "prod-00001") -> ShopEvent:
    return _event(ShopEventType.PAGE_VIEW, session, at, product_id=product, price=Decimal("9.99"))


def a_cart(session: str, at: datetime, product: str = "prod-00001") -> ShopEvent:
    return _event(
        ShopEventType.ADD_TO_CART,
        session,
        at,
        product_id=product,
        quantity=1,
        price=Decimal("9.99"),
    )


def a_purchase(
    session: str,
    at: datetime,
    *lines: tuple[str, int, str],
    currency: str = "EUR",
) -> ShopEvent:
    """A purchase of `lines` (product, quantity, unit price) in `currency`."""
    order = Order(
        order_id=f"ord-{session}-{at:%H%M%S}",
        session_id=session,
        user_id=f"user-of-{session}",
        lines=tuple(
            OrderLine(product_id=p, quantity=q, unit_price=Decimal(price)) for p, q, price in lines
        ),
        currency=currency,
        timestamp=at,
    )
    return _event(ShopEventType.PURCHASE, session, at, order=order)
