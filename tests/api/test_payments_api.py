"""`/api/v1/payments/…`: the flagged feed with its filters and cursor pages, per-rule
counts, a transaction's outcome; bad parameters are 400 problem details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from litestar import Litestar
from litestar.testing import AsyncTestClient

from pipeline.adapters.memory import InMemorySensorStore
from pipeline.adapters.memory.checkpoint import Undo
from pipeline.adapters.memory.table_sinks import memory_table_sinks
from pipeline.adapters.sql.payment_sinks import PAYMENT_SINKS
from pipeline.domain.fraud import (
    FlaggedTransaction,
    FraudRule,
    TransactionOutcome,
    flag_reasons,
)
from pipeline.domain.payments import Channel

Client = AsyncTestClient[Litestar]
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def flagged(n: int, *reasons: FraudRule, account: str = "acct-1") -> FlaggedTransaction:
    return FlaggedTransaction(
        transaction_id=f"tx/{n}",  # ids are free text: the cursor must carry any
        account_id=account,
        amount=Decimal("99.95"),
        currency="EUR",
        merchant="jewelry-de-004",
        country="DE",
        channel=Channel.POINT_OF_SALE,
        timestamp=T0 + timedelta(minutes=n),
        reasons=reasons,
        score=0.9,
    )


def store_rows(store: InMemorySensorStore, **rows: list[object]) -> None:
    """Write rows as the payments job's sinks do."""
    sinks = memory_table_sinks(PAYMENT_SINKS, store.declared)
    undo: Undo = []
    for name, values in rows.items():
        sinks[name].write(values, [None] * len(values), undo)


def store_flags(store: InMemorySensorStore, *rows: FlaggedTransaction) -> None:
    reasons = [r for f in rows for r in flag_reasons(f)]
    store_rows(store, flagged_transactions=list(rows), fraud_flag_reasons=list(reasons))


async def test_flagged_transactions_newest_first_with_reasons_and_score(
    client: Client, store: InMemorySensorStore
) -> None:
    store_flags(store, flagged(1, FraudRule.VELOCITY), flagged(2, FraudRule.AMOUNT_SPIKE))

    response = await client.get("/api/v1/payments/flagged")

    assert response.status_code == 200
    body = response.json()
    assert [i["transaction_id"] for i in body["items"]] == ["tx/2", "tx/1"]
    assert body["items"][0] == {
        "transaction_id": "tx/2",
        "account_id": "acct-1",
        "amount": "99.95",
        "currency": "EUR",
        "merchant": "jewelry-de-004",
        "country": "DE",
        "channel": "pos",
        "timestamp": "2026-11-30T12:02:00Z",
        "reasons": ["amount_spike"],
        "score": 0.9,
    }
    assert body["next_cursor"] is None


async def test_the_feed_filters_by_rule_and_account_and_pages_by_cursor(
    client: Client, store: InMemorySensorStore
) -> None:
    store_flags(
        store,
        *(flagged(n, FraudRule.VELOCITY) for n in range(5)),
        flagged(5, FraudRule.CARD_TESTING),
        flagged(6, FraudRule.VELOCITY, account="acct-2"),
    )

    first = (
        await client.get("/api/v1/payments/flagged?rule=velocity&account_id=acct-1&limit=3")
    ).json()
    second = (
        await client.get(
            "/api/v1/payments/flagged",
            params={
                "rule": "velocity",
                "account_id": "acct-1",
                "limit": 3,
                "cursor": first["next_cursor"],
            },
        )
    ).json()

    assert [i["transaction_id"] for i in first["items"]] == ["tx/4", "tx/3", "tx/2"]
    assert [i["transaction_id"] for i in second["items"]] == ["tx/1", "tx/0"]
    assert second["next_cursor"] is None


async def test_any_string_of_a_cursors_shape_is_a_position(client: Client) -> None:
    response = await client.get("/api/v1/payments/flagged?cursor=0_ff00")

    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_rule_counts_name_every_rule(client: Client, store: InMemorySensorStore) -> None:
    store_flags(
        store,
        flagged(1, FraudRule.VELOCITY, FraudRule.CARD_TESTING),
        flagged(2, FraudRule.VELOCITY),
    )

    body = (await client.get("/api/v1/payments/rules")).json()

    assert {r["rule"]: r["count"] for r in body["rules"]} == {
        "velocity": 2,
        "card_testing": 1,
        "impossible_travel": 0,
        "amount_spike": 0,
        "night_new_category": 0,
    }


async def test_a_transactions_outcome_and_404_for_one_not_joined_yet(
    client: Client, store: InMemorySensorStore
) -> None:
    authorised = TransactionOutcome(
        transaction_id="tx-9",
        account_id="acct-1",
        amount=Decimal("10.00"),
        currency="EUR",
        transaction_time=T0,
        outcome="authorised",
        outcome_time=T0 + timedelta(seconds=2),
    )
    store_rows(store, transaction_outcomes=[authorised])

    found = await client.get("/api/v1/payments/transactions/tx-9/outcome")
    missing = await client.get("/api/v1/payments/transactions/tx-10/outcome")

    assert found.status_code == 200
    assert found.json()["outcomes"] == [
        {"outcome": "authorised", "outcome_time": "2026-11-30T12:00:02Z", "reason": None}
    ]
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_bad_parameters_are_400_problems_naming_them(client: Client) -> None:
    for query, name in [
        ("rule=phishing", "rule"),
        ("since=yesterday", "since"),
        ("cursor=12_%21%21", "cursor"),
        ("limit=0", "limit"),
    ]:
        response = await client.get(f"/api/v1/payments/flagged?{query}")

        assert response.status_code == 400, query
        assert response.headers["content-type"].startswith("application/problem+json")
        assert name in response.text


async def test_the_payments_endpoints_are_in_the_openapi_document(client: Client) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]

    assert {
        "/api/v1/payments/flagged",
        "/api/v1/payments/rules",
        "/api/v1/payments/transactions/{transaction_id}/outcome",
    } <= set(paths)
