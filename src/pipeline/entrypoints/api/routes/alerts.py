"""`/api/v1/alerts`: searching alerts page by page, and acknowledging one."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import PathParameter, QueryParameter
from litestar.types import Guard

from pipeline.application.ports import AlertFilter, AlertPosition
from pipeline.domain.alerts import AlertDomain, Detector, Severity
from pipeline.entrypoints.api.models import AlertOut, AlertPage
from pipeline.entrypoints.api.params import (
    CURSOR_PATTERN,
    SensorType,
    Source,
    decode_cursor,
    encode_cursor,
    known_sensor_type,
    parse_time,
    time_parameter,
)
from pipeline.entrypoints.api.problems import problem_responses
from pipeline.entrypoints.bootstrap import Pipeline

Time = Annotated[str | None, time_parameter("Event time bound.")]


def alert_controller(ack_guards: list[Guard], *, reads_need_key: bool) -> type[Controller]:
    """The alerts controller; acknowledging needs what `ack_guards` demand (an API key).
    `reads_need_key` documents the 401 of the guarded search."""
    errors = problem_responses(400, 503)
    read_errors = errors | problem_responses(*([401] if reads_need_key else []))

    class AlertController(Controller):
        """Alerts raised by the pipeline."""

        path = "/api/v1/alerts"
        tags = ["alerts"]  # noqa: RUF012 - Litestar reads it as a class attribute

        @get(
            "/",
            summary="Search alerts",
            description="Newest first, cursor-paginated.",
            responses=read_errors,
        )
        async def search(
            self,
            *,
            pipeline: NamedDependency[Pipeline],
            source: Source = None,
            domain: Annotated[
                AlertDomain | None, QueryParameter(description="Only alerts about this stream.")
            ] = None,
            detector: Annotated[
                Detector | None,
                QueryParameter(
                    description="Only alerts of this kind of check (`threshold`, `ml`, `rule`)."
                ),
            ] = None,
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
                QueryParameter(
                    description="`next_cursor` of the previous page.", pattern=CURSOR_PATTERN
                ),
            ] = None,
            limit: Annotated[int, QueryParameter(ge=1, le=1000, description="Page size.")] = 100,
        ) -> AlertPage:
            """Alerts matching every given filter, newest event time first. Pass the page's
            `next_cursor` as `cursor`, with the same filters, for the next page."""
            query = AlertFilter(
                source=source,
                domain=domain,
                detector=detector,
                sensor_type=known_sensor_type(sensor_type),
                severity=severity,
                acknowledged=acknowledged,
                since=parse_time(since, "since"),
                until=parse_time(until, "until"),
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
            responses=errors | problem_responses(401, 404),
        )
        async def acknowledge(
            self,
            pipeline: NamedDependency[Pipeline],
            alert_id: Annotated[uuid.UUID, PathParameter(description="The alert's id.")],
        ) -> AlertOut:
            """Mark the alert acknowledged (idempotent: acknowledging again keeps the first
            time). Needs an API key; 400 for an id that is not a UUID, 404 for an unknown
            alert."""
            stored = await pipeline.store.acknowledge_alert(alert_id, pipeline.clock.now())
            if stored is None:
                raise NotFoundException(f"no alert {alert_id}")
            return AlertOut.of(stored)

    return AlertController
