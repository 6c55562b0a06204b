"""`/api/v1/shop/…`: funnel, revenue, sessions and top products as the shop job wrote them
(the job run on the deterministic driver, its rows stored through the in-memory sinks), and
the 400s of bad parameters."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.clock import ManualClock
from pipeline.entrypoints.bootstrap import Pipeline
from pipeline.jobs.shop import ShopJobConfig, shop_job
from pipeline.streams.testing import TestDriver
from tests.shop_events import a_cart, a_purchase, a_search, a_view, commit_rows, job_rows

Client = AsyncTestClient[Litestar]
MIN = timedelta(minutes=1)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def t0(clock: ManualClock) -> datetime:
    """Two hours before the clock: the shop's windows there have all closed."""
    return clock.now() - timedelta(hours=2)


@pytest.fixture
async def shop(pipeline: Pipeline, t0: datetime) -> None:
    """Two sessions run through the shop job, its rows in the pipeline's shop tables: s1
    searches, views, carts and buys 2 × 10.50 EUR; s2 views and leaves its cart."""
    driver = TestDriver(
        shop_job(ShopJobConfig(topic="ecommerce-events", window_grace=timedelta(seconds=10))),
        partitions=2,
        now=t0 + timedelta(hours=1, minutes=30),
    )
    driver.send_all(
        "ecommerce-events",
        [
            a_search("s1", t0),
            a_view("s1", t0 + MIN),
            a_view("s2", t0 + MIN),
            a_cart("s1", t0 + 2 * MIN),
            a_cart("s2", t0 + 2 * MIN),
            a_purchase("s1", t0 + 3 * MIN, ("prod-00001", 2, "10.50")),
        ],
    )
    driver.run()
    driver.advance(MIN)
    await commit_rows(pipeline.checkpoint, job_rows(driver))


@pytest.mark.usefixtures("shop")
async def test_the_funnel_sums_the_partitions_with_rates(client: Client, t0: datetime) -> None:
    response = await client.get(
        "/api/v1/shop/funnel", params={"from": iso(t0), "to": iso(t0 + 10 * MIN)}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["from"] == iso(t0)
    expected = {
        "searches": 1,
        "views": 2,
        "carts": 2,
        "purchases": 1,
        "cart_rate": 1.0,
        "purchase_rate": 0.5,
        "conversion_rate": 0.5,
    }
    assert body["total"] == expected
    assert body["windows"] == [
        {**expected, "window_start": iso(t0), "window_end": iso(t0 + 5 * MIN)}
    ]


@pytest.mark.usefixtures("shop")
async def test_revenue_is_exact_per_minute_and_currency(client: Client, t0: datetime) -> None:
    response = await client.get(
        "/api/v1/shop/revenue", params={"from": iso(t0), "to": iso(t0 + 10 * MIN)}
    )

    assert response.status_code == 200
    assert response.json()["minutes"] == [
        {"minute": iso(t0 + 3 * MIN), "currency": "EUR", "revenue": "21.00", "orders": 1}
    ]
    assert response.json()["totals"] == {"EUR": "21.00"}


@pytest.mark.usefixtures("shop")
async def test_sessions_say_how_they_ended(client: Client, t0: datetime) -> None:
    response = await client.get(
        "/api/v1/shop/sessions", params={"from": iso(t0), "to": iso(t0 + 10 * MIN)}
    )
    abandoned = await client.get(
        "/api/v1/shop/sessions",
        params={"from": iso(t0), "to": iso(t0 + 10 * MIN), "outcome": "abandoned"},
    )

    assert response.status_code == 200
    sessions = response.json()["sessions"]
    assert [(s["session_id"], s["outcome"], s["stage"]) for s in sessions] == [
        ("s1", "bought", "purchased"),
        ("s2", "abandoned", "carted"),
    ]
    assert sessions[0]["duration_s"] == 180.0
    assert (sessions[0]["events"], sessions[0]["revenue"]) == (4, "21.00")
    assert [s["session_id"] for s in abandoned.json()["sessions"]] == ["s2"]


@pytest.mark.usefixtures("shop")
async def test_top_products_of_the_latest_window_before_a_time(
    client: Client, t0: datetime
) -> None:
    response = await client.get("/api/v1/shop/top-products", params={"at": iso(t0)})

    assert response.status_code == 200
    body = response.json()
    assert (body["window_start"], body["window_end"]) == (iso(t0), iso(t0 + timedelta(hours=1)))
    assert body["products"] == [
        {"rank": 1, "product_id": "prod-00001", "revenue_eur": "21.00", "units": 2}
    ]


async def test_top_products_before_any_window_closed_are_empty(client: Client) -> None:
    response = await client.get("/api/v1/shop/top-products")

    assert response.status_code == 200
    assert (response.json()["window_start"], response.json()["products"]) == (None, [])


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/v1/shop/funnel", {"from": "yesterday"}, "from"),
        ("/api/v1/shop/revenue", {"currency": "euro"}, "currency"),
        ("/api/v1/shop/sessions", {"outcome": "lost"}, "outcome"),
        ("/api/v1/shop/sessions", {"limit": "0"}, "limit"),
        ("/api/v1/shop/top-products", {"limit": "11"}, "limit"),
    ],
)
async def test_bad_parameters_are_problem_details_naming_them(
    client: Client, path: str, params: dict[str, str], parameter: str
) -> None:
    response = await client.get(path, params=params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert parameter in response.json()["detail"]


async def test_the_shop_endpoints_are_in_the_openapi_document(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]

    assert {p for p in paths if p.startswith("/api/v1/shop/")} == {
        "/api/v1/shop/funnel",
        "/api/v1/shop/revenue",
        "/api/v1/shop/sessions",
        "/api/v1/shop/top-products",
    }
