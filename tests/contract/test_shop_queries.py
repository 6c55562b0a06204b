"""Contract of `ShopQueries`: the same behaviour from the in-memory tables and from SQLite and
PostgreSQL. Rows go in through each adapter's declared table sinks in a checkpoint commit, per
partition as the job writes them; the queries add the partitions up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.adapters.memory.shop_store import InMemoryShopQueries
from pipeline.adapters.memory.table_sinks import DeclaredRows
from pipeline.adapters.sql.shop_store import SHOP_SINKS, SqlShopQueries
from pipeline.application.ports import ShopQueries, TopProduct
from pipeline.domain.shop_analytics import (
    CurrencyRevenue,
    FunnelCounts,
    FunnelStage,
    FunnelWindow,
    ProductRank,
    ProductSales,
    SessionOutcome,
    ShopSession,
)
from tests.databases import module_database
from tests.declared_stores import emptied, memory_store, sql_store, sqlite_url
from tests.shop_events import T0, commit_rows

Write = Callable[[str, Sequence[object]], Awaitable[None]]
FIVE = timedelta(minutes=5)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def funnel(start_minutes: int, partition: int, views: int, purchases: int) -> FunnelWindow:
    start = T0 + timedelta(minutes=start_minutes)
    return FunnelWindow(
        window_start=start,
        window_end=start + FIVE,
        partition=partition,
        counts=FunnelCounts(searches=1, views=views, carts=views // 2, purchases=purchases),
    )


def session(sid: str, end_minutes: int, stage: FunnelStage) -> ShopSession:
    bought = stage is FunnelStage.PURCHASED
    return ShopSession(
        session_id=sid,
        user_id=f"u-{sid}",
        started_at=T0,
        ended_at=T0 + timedelta(minutes=end_minutes),
        events=3,
        stage=stage,
        orders=1 if bought else 0,
        revenue=Decimal("12.34") if bought else Decimal("0.00"),
        currency="EUR" if bought else None,
    )


def rank(start: int, partition: int, place: int, product: str, revenue: str) -> ProductRank:
    begin = T0 + timedelta(minutes=start)
    return ProductRank(
        window_start=begin,
        window_end=begin + HOUR,
        partition=partition,
        rank=place,
        product_id=product,
        sales=ProductSales(revenue_eur=Decimal(revenue), units=place),
    )


class ShopQueriesContract:
    """What every ShopQueries adapter does. Subclasses provide `queries` and `write`."""

    async def test_the_funnel_adds_the_partitions_windows_up_oldest_first(
        self, queries: ShopQueries, write: Write
    ) -> None:
        await write(
            "shop_funnel_5m", [funnel(5, 0, 10, 1), funnel(0, 1, 30, 2), funnel(0, 0, 10, 2)]
        )

        points = await queries.funnel(T0, T0 + HOUR)

        assert [(p.window_start, p.window_end) for p in points] == [
            (T0, T0 + FIVE),
            (T0 + FIVE, T0 + 2 * FIVE),
        ]
        assert points[0].counts == FunnelCounts(searches=2, views=40, carts=20, purchases=4)
        assert points[0].counts.conversion_rate == 0.1

    async def test_the_funnel_range_is_by_window_start_half_open(
        self, queries: ShopQueries, write: Write
    ) -> None:
        await write("shop_funnel_5m", [funnel(0, 0, 10, 1), funnel(5, 0, 10, 1)])

        points = await queries.funnel(T0 + FIVE, T0 + 2 * FIVE)

        assert [p.window_start for p in points] == [T0 + FIVE]

    async def test_a_rewritten_window_replaces_the_partitions_row(
        self, queries: ShopQueries, write: Write
    ) -> None:
        await write("shop_funnel_5m", [funnel(0, 0, 10, 1)])
        await write("shop_funnel_5m", [funnel(0, 0, 10, 1)])

        [point] = await queries.funnel(T0, T0 + HOUR)

        assert point.counts.views == 10

    async def test_revenue_adds_partitions_per_minute_and_currency_exactly(
        self, queries: ShopQueries, write: Write
    ) -> None:
        rows = [
            CurrencyRevenue(
                minute=T0, currency="EUR", partition=0, revenue=Decimal("0.10"), orders=1
            ),
            CurrencyRevenue(
                minute=T0, currency="EUR", partition=1, revenue=Decimal("0.20"), orders=2
            ),
            CurrencyRevenue(
                minute=T0, currency="USD", partition=1, revenue=Decimal("5.00"), orders=1
            ),
            CurrencyRevenue(
                minute=T0 + MIN, currency="EUR", partition=0, revenue=Decimal("1.01"), orders=1
            ),
        ]
        await write("shop_revenue_1m", rows)

        points = await queries.revenue(T0, T0 + HOUR)
        euros = await queries.revenue(T0, T0 + HOUR, currency="EUR")

        assert [(p.minute, p.currency, p.revenue, p.orders) for p in points] == [
            (T0, "EUR", Decimal("0.30"), 3),
            (T0, "USD", Decimal("5.00"), 1),
            (T0 + MIN, "EUR", Decimal("1.01"), 1),
        ]
        assert [p.currency for p in euros] == ["EUR", "EUR"]

    async def test_sessions_come_latest_ending_first_filtered_by_outcome(
        self, queries: ShopQueries, write: Write
    ) -> None:
        stored = [
            session("a", 10, FunnelStage.PURCHASED),
            session("b", 20, FunnelStage.CARTED),
            session("c", 30, FunnelStage.VIEWED),
            session("d", 90, FunnelStage.CARTED),
        ]
        await write("shop_sessions", stored)

        found = await queries.sessions(T0, T0 + HOUR)
        abandoned = await queries.sessions(T0, T0 + HOUR, outcome=SessionOutcome.ABANDONED)
        one = await queries.sessions(T0, T0 + HOUR, limit=1)

        assert found == [stored[2], stored[1], stored[0]]
        assert [s.session_id for s in abandoned] == ["b"]
        assert [s.session_id for s in one] == ["c"]

    async def test_top_products_merge_the_partitions_rankings_of_the_latest_window(
        self, queries: ShopQueries, write: Write
    ) -> None:
        await write(
            "shop_top_products_1h",
            [
                rank(0, 0, 1, "p-old", "999.00"),
                rank(1, 0, 1, "p-a", "50.00"),
                rank(1, 0, 2, "p-b", "40.00"),
                rank(1, 1, 1, "p-b", "30.00"),
                rank(1, 1, 2, "p-c", "40.00"),
            ],
        )

        top = await queries.top_products(T0 + HOUR, limit=2)
        earlier = await queries.top_products(T0, limit=5)
        none = await queries.top_products(T0 - MIN)

        assert top is not None
        assert (top.window_start, top.window_end) == (T0 + MIN, T0 + MIN + HOUR)
        assert top.products == (
            TopProduct(product_id="p-b", revenue_eur=Decimal("70.00"), units=3),
            TopProduct(product_id="p-a", revenue_eur=Decimal("50.00"), units=1),
        )
        assert earlier is not None
        assert [p.product_id for p in earlier.products] == ["p-old"]
        assert none is None


class TestInMemoryShopQueries(ShopQueriesContract):
    @pytest.fixture
    def rows(self) -> DeclaredRows:
        return {}

    @pytest.fixture
    def queries(self, rows: DeclaredRows) -> ShopQueries:
        return InMemoryShopQueries(rows)

    @pytest.fixture
    def write(self, rows: DeclaredRows) -> Write:
        store = memory_store(SHOP_SINKS, rows)
        return lambda sink, r: commit_rows(store, {sink: r})


class SqlShopQueriesSuite(ShopQueriesContract):
    @pytest.fixture
    async def engine(self, sql_url: str) -> AsyncIterator[AsyncEngine]:
        async with emptied(sql_url, SHOP_SINKS) as engine:
            yield engine

    @pytest.fixture
    def queries(self, engine: AsyncEngine) -> ShopQueries:
        return SqlShopQueries(engine)

    @pytest.fixture
    def write(self, engine: AsyncEngine) -> Write:
        store = sql_store(engine, SHOP_SINKS)
        return lambda sink, r: commit_rows(store, {sink: r})


class TestSqliteShopQueries(SqlShopQueriesSuite):
    @pytest.fixture
    def sql_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """One throwaway database for this module, created and migrated by Alembic."""
    yield from module_database("contract_shop_queries")


@pytest.mark.integration
class TestPostgresShopQueries(SqlShopQueriesSuite):
    @pytest.fixture
    def sql_url(self, postgres_url: str) -> str:
        return postgres_url
