"""`/api/v1/alerts`: searching alerts page by page, and acknowledging one."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter
from litestar.types import Guard

from pipeline.application.ports import AlertFilter, AlertPosition
from pipeline.domain.alerts import Severity
from pipeline.entrypoints.api.models import AlertOut, AlertPage
from pipeline.entrypoints.api.params import (
    SensorType,
    Source,
    as_utc,
    bad_parameter,
    decode_cursor,
    encode_cursor,
)
from pipeline.entrypoints.bootstrap import Pipeline

Time = Annotated[datetime | None, QueryParameter(description="Event time bound (ISO 8601).")]


def alert_controller(ack_guards: list[Guard]) -> type[Controller]:
    """The alerts controller; acknowledging needs what `ack_guards` demand (an API key)."""

    class AlertController(Controller):
        """Alerts raised by the pipeline."""

        path = "/api/v1/alerts"
        tags = ["alerts"]  # noqa: RUF012 - Litestar reads it as a class attribute

        @get("/", summary="Search alerts", description="Newest first, cursor-paginated.")
        async def search(
            self,
            *,
            pipeline: NamedDependency[Pipeline],
            source: Source = None,
            sensor_type: SensorType = None,
            severity: Annotated[
                Severity | None, QueryParameter(description="Only this severity.")
            ] = None,
            acknowledged: Annotated[
                bool | None, QueryParameter(description="Only (un)acknowledged alerts.")
            ] = None,
            since: Time = None,
            until: Time = None,
            cursor: Annotated[
                str | None,
                QueryParameter(description="`next_cursor` of the previous page.", max_length=200),
            ] = None,
            limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Page size.")] = 100,
        ) -> AlertPage:
            """Alerts matching every given filter, newest event time first. Pass the page's
            `next_cursor` as `cursor`, with the same filters, for the next page."""
            query = AlertFilter(
                source=source,
                sensor_type=sensor_type,
                severity=severity,
                acknowledged=acknowledged,
                since=as_utc(since, "since"),
                until=as_utc(until, "until"),
            )
            after = decode_cursor(cursor) if cursor is not None else None
            # One more than asked tells whether another page exists.
            found = await pipeline.store.find_alerts(query, after=after, limit=limit + 1)
            page, more = found[:limit], len(found) > limit
            next_cursor = None
            if more:
                last = page[-1].alert
                next_cursor = encode_cursor(AlertPosition(last.timestamp, last.alert_id))
            return AlertPage(items=[AlertOut.of(a) for a in page], next_cursor=next_cursor)

        @post(
            "/{alert_id:str}/ack",
            summary="Acknowledge an alert",
            guards=ack_guards,
            status_code=200,
            security=[{"ApiKey": []}],
        )
        async def acknowledge(
            self,
            pipeline: NamedDependency[Pipeline],
            alert_id: Annotated[
                str, PathParameter(description="The alert's id (a UUID).", max_length=100)
            ],
        ) -> AlertOut:
            """Mark the alert acknowledged (idempotent: acknowledging again keeps the first
            time). Needs an API key; 400 for an id that is not a UUID, 404 for an unknown
            alert."""
            # Parsed here rather than by the route so a malformed id is a 400, not a 404.
            try:
                parsed = uuid.UUID(alert_id)
            except ValueError:
                raise bad_parameter("alert_id", "must be a UUID", source="path") from None
            stored = await pipeline.store.acknowledge_alert(parsed, pipeline.clock.now())
            if stored is None:
                raise NotFoundException(f"no alert {parsed}")
            return AlertOut.of(stored)

    return AlertController
