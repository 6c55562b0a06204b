"""Specification of a well-formed e-commerce event."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from pipeline.domain import (
    InvalidShopEvent,
    Order,
    OrderLine,
    ShopEvent,
    ShopEventType,
    validate_shop_event,
)

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def an_event(event_type: ShopEventType = ShopEventType.PAGE_VIEW, **changes: Any) -> ShopEvent:
    event = ShopEvent(
        event_id="evt-1",
        event_type=event_type,
        session_id="sess-1",
        user_id="user-1",
        timestamp=AT,
        product_id="sku-42",
        price=Decimal("19.99"),
    )
    return dataclasses.replace(event, **changes)


def an_order(*lines: OrderLine, currency: str = "EUR") -> Order:
    return Order(
        order_id="ord-1",
        session_id="sess-1",
        user_id="user-1",
        lines=lines,
        currency=currency,
        timestamp=AT,
    )


def a_line(quantity: int = 2, unit_price: str = "19.99", product_id: str = "sku-42") -> OrderLine:
    return OrderLine(product_id=product_id, quantity=quantity, unit_price=Decimal(unit_price))


def a_purchase(order: Order | None) -> ShopEvent:
    return an_event(ShopEventType.PURCHASE, product_id=None, price=None, order=order)


def test_well_formed_events_of_every_type_are_returned_unchanged() -> None:
    events = [
        an_event(ShopEventType.PAGE_VIEW),
        an_event(ShopEventType.ADD_TO_CART, quantity=1),
        an_event(ShopEventType.SEARCH, product_id=None, price=None, query="red shoes"),
        a_purchase(an_order(a_line())),
    ]

    assert [validate_shop_event(event) for event in events] == events


@pytest.mark.parametrize("field", ["event_id", "session_id", "user_id"])
def test_empty_identifier_is_rejected(field: str) -> None:
    with pytest.raises(InvalidShopEvent, match="must not be empty"):
        validate_shop_event(an_event(ShopEventType.PAGE_VIEW, **{field: ""}))


@pytest.mark.parametrize("event_type", [ShopEventType.PAGE_VIEW, ShopEventType.ADD_TO_CART])
def test_view_or_cart_addition_without_a_product_is_rejected(event_type: ShopEventType) -> None:
    with pytest.raises(InvalidShopEvent, match="has no product"):
        validate_shop_event(an_event(event_type, product_id=None, quantity=1))


@pytest.mark.parametrize("quantity", [None, 0, -1])
def test_cart_addition_needs_a_positive_quantity(quantity: int | None) -> None:
    with pytest.raises(InvalidShopEvent, match="quantity must be positive"):
        validate_shop_event(an_event(ShopEventType.ADD_TO_CART, quantity=quantity))


@pytest.mark.parametrize("price", ["-0.01", "NaN", "Infinity"])
def test_negative_or_non_finite_price_is_rejected(price: str) -> None:
    with pytest.raises(InvalidShopEvent, match="non-negative number"):
        validate_shop_event(an_event(price=Decimal(price)))


def test_free_product_is_accepted() -> None:
    event = an_event(price=Decimal("0.00"))

    assert validate_shop_event(event) is event


@pytest.mark.parametrize("query", [None, "", "   "])
def test_search_needs_a_query(query: str | None) -> None:
    with pytest.raises(InvalidShopEvent, match="empty query"):
        validate_shop_event(an_event(ShopEventType.SEARCH, product_id=None, query=query))


@pytest.mark.parametrize("order", [None, an_order()])
def test_purchase_without_order_lines_is_rejected(order: Order | None) -> None:
    with pytest.raises(InvalidShopEvent, match="no order lines"):
        validate_shop_event(a_purchase(order))


@pytest.mark.parametrize("currency", ["eur", "EURO", "E1R", ""])
def test_purchase_in_a_malformed_currency_is_rejected(currency: str) -> None:
    with pytest.raises(InvalidShopEvent, match="ISO 4217"):
        validate_shop_event(a_purchase(an_order(a_line(), currency=currency)))


@pytest.mark.parametrize(
    "line",
    [a_line(quantity=0), a_line(quantity=-3), a_line(unit_price="-1"), a_line(unit_price="NaN"),
     a_line(unit_price="sNaN"), a_line(unit_price="Infinity")],
)  # fmt: skip
def test_order_line_needs_a_positive_quantity_and_a_finite_non_negative_price(
    line: OrderLine,
) -> None:
    with pytest.raises(InvalidShopEvent, match="needs a positive quantity"):
        validate_shop_event(a_purchase(an_order(a_line(product_id="sku-1"), line)))


def test_naive_or_non_utc_time_is_a_shop_event_error() -> None:
    with pytest.raises(InvalidShopEvent, match="no timezone"):
        validate_shop_event(an_event(timestamp=AT.replace(tzinfo=None)))
    with pytest.raises(InvalidShopEvent, match="not in UTC"):
        validate_shop_event(an_event(timestamp=AT.astimezone(timezone(timedelta(hours=-5)))))


def test_order_total_sums_quantity_times_unit_price() -> None:
    order = an_order(a_line(quantity=2, unit_price="19.99"), a_line(quantity=1, unit_price="0.02"))

    assert order.total == Decimal("40.00")


def test_empty_order_totals_zero() -> None:
    assert an_order().total == Decimal(0)
