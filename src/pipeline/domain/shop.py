"""E-commerce events: what shoppers do in a session, and the orders they place."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pipeline.domain.errors import InvalidShopEvent
from pipeline.domain.money import require_currency
from pipeline.domain.time import require_utc


class ShopEventType(StrEnum):
    """What a shopper did."""

    PAGE_VIEW = "page_view"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    SEARCH = "search"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLine:
    """One product in an order."""

    product_id: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A purchase: the lines bought in one session, in one currency."""

    order_id: str
    session_id: str
    user_id: str
    lines: tuple[OrderLine, ...]
    currency: str
    timestamp: datetime

    @property
    def total(self) -> Decimal:
        """Sum of quantity × unit price over the lines."""
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class ShopEvent:
    """One event of a shopping session. `product_id` is set for page views and cart
    additions, `query` for searches, `order` for purchases."""

    event_id: str
    event_type: ShopEventType
    session_id: str
    user_id: str
    timestamp: datetime
    product_id: str | None = None
    quantity: int | None = None
    price: Decimal | None = None
    query: str | None = None
    order: Order | None = None


def validate_shop_event(event: ShopEvent) -> ShopEvent:
    """Return `event` if it is well formed, else raise InvalidShopEvent naming the rule."""
    if not event.event_id or not event.session_id or not event.user_id:
        raise InvalidShopEvent("event_id, session_id and user_id must not be empty")
    require_utc(event.timestamp, error=InvalidShopEvent)
    needs_product = event.event_type in (ShopEventType.PAGE_VIEW, ShopEventType.ADD_TO_CART)
    if needs_product and not event.product_id:
        raise InvalidShopEvent(f"{event.event_type} event {event.event_id} has no product")
    if event.event_type is ShopEventType.ADD_TO_CART and (event.quantity or 0) <= 0:
        raise InvalidShopEvent(f"add_to_cart {event.event_id}: quantity must be positive")
    if event.price is not None and (not event.price.is_finite() or event.price < 0):
        raise InvalidShopEvent(f"event {event.event_id}: price must be a non-negative number")
    if event.event_type is ShopEventType.SEARCH and not (event.query or "").strip():
        raise InvalidShopEvent(f"search {event.event_id} has an empty query")
    if event.event_type is ShopEventType.PURCHASE:
        order = event.order
        if order is None or not order.lines:
            raise InvalidShopEvent(f"purchase {event.event_id} has no order lines")
        require_currency(order.currency, InvalidShopEvent)
        for line in order.lines:
            # Check finiteness first: ordering a Decimal NaN raises InvalidOperation.
            if line.quantity <= 0 or not line.unit_price.is_finite() or line.unit_price < 0:
                raise InvalidShopEvent(
                    f"order {order.order_id}: line {line.product_id} needs a positive "
                    "quantity and a non-negative price"
                )
    return event
