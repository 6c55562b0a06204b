"""Builders of shop events for the shop job's tests (driver, runtime, API), and the
storing of the job's rows as its runtime commits them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count

from pipeline.application.ports import TopicPartition
from pipeline.application.ports.checkpoint import CheckpointStore
from pipeline.domain import Order, OrderLine, ShopEvent, ShopEventType
from pipeline.streams.testing import TestDriver
from tests.sink_batches import SinkBatches

SINKS = ("shop_sessions", "shop_funnel_5m", "shop_revenue_1m", "shop_top_products_1h", "alerts")
"""The shop job's sinks."""

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


async def commit_rows(store: CheckpointStore, rows: Mapping[str, Sequence[object]]) -> None:
    """Commit `rows` by sink name (the shop job's tables, `alerts`) as one batch of a
    consumer group of its own, as the job's runtime commits them."""
    partition = TopicPartition("ecommerce-events", 0)
    await SinkBatches(store, partition, group_id=f"shop-test-{uuid.uuid4().hex[:8]}").commit(rows)


def job_rows(driver: TestDriver) -> dict[str, list[object]]:
    """What the shop job committed on `driver`, by sink name."""
    return {name: driver.results(name) for name in SINKS}
