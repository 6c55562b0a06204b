"""`/api/v1/payments/…`: transactions the fraud rules flagged (with their reasons), how many
each rule flagged, and a transaction's outcomes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter

from pipeline.application.ports.payments import FlaggedFilter, FlaggedPosition
from pipeline.domain.fraud import FlaggedTransaction, FraudRule, TransactionOutcome
from pipeline.domain.time import from_epoch_micros, to_epoch_micros
from pipeline.entrypoints.api.params import (
    EARLIEST,
    LATEST,
    bad_parameter,
    parse_time,
    time_parameter,
)
from pipeline.entrypoints.api.problems import problem_responses
from pipeline.entrypoints.bootstrap import Pipeline

_IDENT = r"^[^\x00-\x1f\x7f]+$"
_IDENT_MAX = 200
FLAGGED_CURSOR_PATTERN = r"^-?[0-9]{1,20}_([0-9a-f]{2}){1,400}$"
"""`<epoch microseconds>_<transaction id, UTF-8 in hex>`."""
_CURSOR = re.compile(r"(?P<micros>-?[0-9]{1,20})_(?P<tx>(?:[0-9a-f]{2}){1,400})")

Since = Annotated[str | None, time_parameter("From this event time (inclusive).")]
Until = Annotated[str | None, time_parameter("Up to this event time (exclusive).")]


class FlaggedOut(msgspec.Struct, kw_only=True):
    """A transaction the fraud rules flagged."""

    transaction_id: str
    account_id: str
    amount: str
    """Decimal, as text (no rounding)."""
    currency: str
    merchant: str
    country: str
    channel: str
    timestamp: datetime
    reasons: list[str]
    """The rules that fired."""
    score: float

    @classmethod
    def of(cls, flagged: FlaggedTransaction) -> FlaggedOut:
        """The body of `flagged`."""
        return cls(
            transaction_id=flagged.transaction_id,
            account_id=flagged.account_id,
            amount=str(flagged.amount),
            currency=flagged.currency,
            merchant=flagged.merchant,
            country=flagged.country,
            channel=flagged.channel.value,
            timestamp=flagged.timestamp,
            reasons=[str(r) for r in flagged.reasons],
            score=flagged.score,
        )


class FlaggedPage(msgspec.Struct, kw_only=True):
    """A page of flagged transactions, newest first."""

    items: list[FlaggedOut]
    next_cursor: str | None
    """Pass as `cursor` (with the same filters) for the next page; null on the last."""


class RuleCountOut(msgspec.Struct, kw_only=True):
    """How many transactions a rule flagged."""

    rule: str
    count: int


class RuleCounts(msgspec.Struct, kw_only=True):
    """Flags per rule in a range of event time (every rule, zero included)."""

    since: datetime | None
    until: datetime | None
    rules: list[RuleCountOut]


class OutcomeOut(msgspec.Struct, kw_only=True):
    """One outcome of a transaction (`none`: none came within the join's interval)."""

    outcome: str
    outcome_time: datetime | None
    reason: str | None


class TransactionOutcomes(msgspec.Struct, kw_only=True):
    """A transaction and what happened to it afterwards."""

    transaction_id: str
    account_id: str
    amount: str
    currency: str
    transaction_time: datetime
    outcomes: list[OutcomeOut]

    @classmethod
    def of(cls, found: list[TransactionOutcome]) -> TransactionOutcomes:
        """The body of a transaction's stored outcomes (at least one)."""
        first = found[0]
        return cls(
            transaction_id=first.transaction_id,
            account_id=first.account_id,
            amount=str(first.amount),
            currency=first.currency,
            transaction_time=first.transaction_time,
            outcomes=[
                OutcomeOut(outcome=o.outcome, outcome_time=o.outcome_time, reason=o.reason)
                for o in found
            ],
        )


def encode_flagged_cursor(position: FlaggedPosition) -> str:
    """The cursor of the page after `position`."""
    return f"{to_epoch_micros(position.timestamp)}_{position.transaction_id.encode().hex()}"


def decode_flagged_cursor(cursor: str) -> FlaggedPosition:
    """The position `cursor` stands for (any string of a cursor's shape is one: bytes that
    are not UTF-8 become U+FFFD, a position like any other), or a 400 when it does not have
    the shape of a cursor."""
    match = _CURSOR.fullmatch(cursor)
    if match is None:
        raise bad_parameter("cursor", "not a cursor returned by this API")
    tx = bytes.fromhex(match["tx"]).decode(errors="replace")
    micros = int(match["micros"])
    try:
        timestamp = from_epoch_micros(micros)
    except OverflowError:
        timestamp = EARLIEST if micros < 0 else LATEST
    return FlaggedPosition(timestamp, tx)


def payments_controller(*, reads_need_key: bool) -> type[Controller]:
    """The payments controller; `reads_need_key` documents the 401 of its guarded reads."""
    errors = problem_responses(400, 503, *([401] if reads_need_key else []))

    class PaymentsController(Controller):
        """What the payments job found: flagged transactions and outcomes."""

        path = "/api/v1/payments"
        tags = ["payments"]  # noqa: RUF012 - Litestar reads it as a class attribute

        @get(
            "/flagged",
            summary="Flagged transactions",
            description="Newest first, cursor-paginated.",
            responses=errors,
        )
        async def flagged(
            self,
            *,
            pipeline: NamedDependency[Pipeline],
            rule: Annotated[
                FraudRule | None, QueryParameter(description="Only those this rule flagged.")
            ] = None,
            account_id: Annotated[
                str | None,
                QueryParameter(
                    description="Only this account's.",
                    min_length=1,
                    max_length=_IDENT_MAX,
                    pattern=_IDENT,
                ),
            ] = None,
            since: Since = None,
            until: Until = None,
            cursor: Annotated[
                str | None,
                QueryParameter(
                    description="`next_cursor` of the previous page.",
                    pattern=FLAGGED_CURSOR_PATTERN,
                ),
            ] = None,
            limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Page size.")] = 100,
        ) -> FlaggedPage:
            """Flagged transactions matching every given filter, newest event time first,
            each with the rules that fired and its score. Pass the page's `next_cursor` as
            `cursor`, with the same filters, for the next page."""
            query = FlaggedFilter(
                rule=rule,
                account_id=account_id,
                since=parse_time(since, "since"),
                until=parse_time(until, "until"),
            )
            after = decode_flagged_cursor(cursor) if cursor is not None else None
            # One more than asked tells whether another page exists.
            found = await pipeline.payment_queries().find_flagged(
                query, after=after, limit=limit + 1
            )
            page, more = found[:limit], len(found) > limit
            next_cursor = None
            if more:
                last = page[-1]
                next_cursor = encode_flagged_cursor(
                    FlaggedPosition(last.timestamp, last.transaction_id)
                )
            return FlaggedPage(items=[FlaggedOut.of(f) for f in page], next_cursor=next_cursor)

        @get("/rules", summary="Flags per rule", responses=errors)
        async def rules(
            self,
            pipeline: NamedDependency[Pipeline],
            since: Since = None,
            until: Until = None,
        ) -> RuleCounts:
            """How many transactions each fraud rule flagged in [since, until) of event
            time (a transaction several rules flagged counts for each)."""
            start, end = parse_time(since, "since"), parse_time(until, "until")
            counts = await pipeline.payment_queries().rule_counts(since=start, until=end)
            return RuleCounts(
                since=start,
                until=end,
                rules=[RuleCountOut(rule=str(r), count=n) for r, n in counts.items()],
            )

        @get(
            "/transactions/{transaction_id:str}/outcome",
            summary="A transaction's outcome",
            responses=errors | problem_responses(404),
        )
        async def outcome(
            self,
            pipeline: NamedDependency[Pipeline],
            transaction_id: Annotated[
                str,
                PathParameter(
                    description="The transaction.", max_length=_IDENT_MAX, pattern=_IDENT
                ),
            ],
        ) -> TransactionOutcomes:
            """Its authorisation or decline and any chargeback, as the job joined them
            (`none` when none came within the interval); 404 until the job has joined it."""
            found = await pipeline.payment_queries().outcomes_of(transaction_id)
            if not found:
                raise NotFoundException(f"no outcome of transaction {transaction_id[:100]!r} yet")
            return TransactionOutcomes.of(found)

    return PaymentsController
