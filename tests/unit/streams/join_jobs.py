"""Records and jobs shared by the join tests: orders looked up in an accounts table, and
orders joined with payments within an interval of event time."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.application.errors import MalformedPayload
from pipeline.streams import Job, JoinedStream, Sink
from pipeline.streams.job import JoinHow

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDLE = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    """The event time `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    account: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    tier: str


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    account: str
    at: datetime


class JsonCodec:
    """JSON objects of one dataclass on the wire."""

    def __init__(self, kind: type[Any]) -> None:
        self._kind = kind

    async def encode(self, value: Any) -> bytes:
        data = asdict(value)
        return json.dumps({k: v.isoformat() if k == "at" else v for k, v in data.items()}).encode()

    async def decode_many(self, payloads: Sequence[bytes | None]) -> list[Any]:
        out: list[Any] = []
        for payload in payloads:
            try:
                data = json.loads(payload or b"")
                if "at" in data:
                    data["at"] = T0.fromisoformat(data["at"])
                out.append(self._kind(**data))
            except (ValueError, TypeError) as error:
                out.append(MalformedPayload(str(error)))
        return out


ENRICHED = Sink("enriched", tuple)
MATCHED = Sink("matched", tuple)


def order(id_: str, seconds: float = 0, account: str = "a") -> Order:
    return Order(id_, account, at(seconds))


def payment(id_: str, seconds: float = 0, account: str = "a") -> Payment:
    return Payment(id_, account, at(seconds))


def orders_with_accounts(how: JoinHow = "inner") -> Job:
    """orders ⋈ accounts → (order id, tier or None) into ENRICHED."""
    job = Job("enrich", idle_timeout=IDLE)
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    accounts = job.table("accounts", Account, key=lambda a: a.account)
    if how == "left":
        orders.join_table(accounts, lambda o, a: (o.id, a.tier if a else None), how="left").to(
            ENRICHED
        )
    else:
        orders.join_table(accounts, lambda o, a: (o.id, a.tier)).to(ENRICHED)
    return job


def orders_with_payments(
    how: JoinHow = "inner",
    *,
    before: float = 10,
    after: float = 20,
    grace: float = 5,
    route_late: bool = False,
    matches: Callable[[Order, Payment], bool] | None = None,
) -> Job:
    """orders ⋈ payments with payment.at ∈ [order.at − before, order.at + after] (and
    `matches`, if given) → (order id, payment id or None) into MATCHED; step "paid"."""
    job = Job("paid", idle_timeout=IDLE)
    orders = job.source("orders", Order, key=lambda o: o.account, event_time=lambda o: o.at)
    payments = job.source("payments", Payment, key=lambda p: p.account, event_time=lambda p: p.at)
    b, a, g = timedelta(seconds=before), timedelta(seconds=after), timedelta(seconds=grace)
    joined: JoinedStream[str, tuple[str, str | None]]
    if how == "left":
        joined = orders.join(
            payments,
            lambda o, p: (o.id, p.id if p else None),
            before=b,
            after=a,
            grace=g,
            how="left",
            step="paid",
            matches=matches,
        )
    else:
        joined = orders.join(
            payments,
            lambda o, p: (o.id, p.id),
            before=b,
            after=a,
            grace=g,
            step="paid",
            matches=matches,
        )
    joined.to(MATCHED)
    if route_late:
        joined.late().map(lambda v: v.id).to(Sink("late", str))
    return job


def paid_for(o: Order, p: Payment) -> bool:
    """Whether payment `p` pays order `o`: its id is the order's with a "pay-" prefix."""
    return p.id == f"pay-{o.id}"


def orders_with_global_accounts(how: JoinHow = "inner") -> Job:
    job = Job("global-enrich")
    orders = job.source("orders", Order, key=lambda o: o.id, event_time=lambda o: o.at)
    accounts = job.global_table("accounts", Account)
    if how == "left":
        joined = orders.join_global(
            accounts,
            lambda o, a: (o.id, a.tier if a else None),
            key=lambda o: o.account,
            how="left",
        )
    else:
        joined = orders.join_global(accounts, lambda o, a: (o.id, a.tier), key=lambda o: o.account)
    joined.to(ENRICHED)
    return job
