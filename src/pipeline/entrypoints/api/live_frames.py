"""The JSON text frames of the live view (`/ws/sensors`), as msgspec structs tagged by their
`type`. The browser dashboard depends on these shapes: add fields, never rename or drop."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

import msgspec

from pipeline.application.live import DroppedNotice, LiveAlert, LiveEvent, LiveFilter, LiveReading

_ENCODER = msgspec.json.Encoder()


class ReadingFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="reading"):
    """A valid reading, as it is processed."""

    sensor_id: str
    sensor_type: str
    value: float
    unit: str
    time: datetime
    location: str | None
    battery_level: float | None
    signal_strength: float | None


class AlertFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="alert"):
    """An alert, as it is published to the alerts topic."""

    alert_id: str
    sensor_id: str
    """The alert's source (the sensor id for sensor alerts)."""
    source: str
    kind: str
    domain: str
    """The stream the alert is about: sensors, shop, payments or social."""
    detector: str
    """The kind of check that raised it: threshold, ml or rule."""
    sensor_type: str | None
    severity: str
    message: str
    value: float | None
    threshold: float | None
    score: float | None
    reasons: list[str]
    model_version: str | None
    time: datetime


class StatsFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="stats"):
    """Throughput of this API process's feed, about once a second, to every client."""

    readings_per_second: float
    lag: int | None
    clients: int
    dropped: int
    time: datetime


class HeartbeatFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="heartbeat"):
    """Sent every `api.ws_heartbeat_s` seconds."""

    time: datetime


class DroppedFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="dropped"):
    """The client lost `count` messages (`total` since it connected) while it was slow."""

    count: int
    total: int


class FilterBody(msgspec.Struct, kw_only=True):
    """A filter as the client sees it; null means any."""

    sensor_types: list[str] | None
    sensor_ids: list[str] | None
    alerts_only: bool
    domains: list[str] | None


class SubscribedFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="subscribed"):
    """The filter now in force (on connect and after each subscribe)."""

    filter: FilterBody


class ErrorFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="error"):
    """A client message was refused; the connection stays open."""

    error: str
    """`bad_subscribe` or `bad_message`."""
    detail: str


class PongFrame(msgspec.Struct, kw_only=True, tag_field="type", tag="pong"):
    """The answer to a client's `{"type": "ping"}`."""


Frame = (
    ReadingFrame
    | AlertFrame
    | StatsFrame
    | HeartbeatFrame
    | DroppedFrame
    | SubscribedFrame
    | ErrorFrame
    | PongFrame
)


def frame_of(event: LiveEvent | DroppedNotice) -> Frame:
    """The frame telling a client about `event`."""
    if isinstance(event, LiveReading):
        r = event.reading
        return ReadingFrame(
            sensor_id=r.sensor_id,
            sensor_type=r.sensor_type,
            value=r.value,
            unit=r.unit,
            time=r.timestamp,
            location=r.location,
            battery_level=r.battery_level,
            signal_strength=r.signal_strength,
        )
    if isinstance(event, LiveAlert):
        a = event.alert
        return AlertFrame(
            alert_id=str(a.alert_id),
            sensor_id=a.source,
            source=a.source,
            kind=a.kind.value,
            domain=a.domain.value,
            detector=a.detector.value,
            sensor_type=a.sensor_type,
            severity=a.severity.value,
            message=a.message,
            value=a.value,
            threshold=a.threshold,
            score=a.score,
            reasons=list(a.reasons),
            model_version=a.model_version,
            time=a.timestamp,
        )
    if isinstance(event, DroppedNotice):
        return DroppedFrame(count=event.count, total=event.total)
    return StatsFrame(
        readings_per_second=event.readings_per_second,
        lag=event.lag,
        clients=event.clients,
        dropped=event.dropped,
        time=event.time,
    )


def subscribed_frame(live_filter: LiveFilter) -> SubscribedFrame:
    """The `subscribed` frame of `live_filter` (values sorted, so it reads the same twice)."""
    types, ids, domains = live_filter.sensor_types, live_filter.sensor_ids, live_filter.domains
    return SubscribedFrame(
        filter=FilterBody(
            sensor_types=sorted(types) if types is not None else None,
            sensor_ids=sorted(ids) if ids is not None else None,
            alerts_only=live_filter.alerts_only,
            domains=sorted(domains) if domains is not None else None,
        )
    )


def encode_frame(frame: Frame) -> str:
    """The JSON text of `frame`."""
    return _ENCODER.encode(frame).decode()


class EncodedEvents:
    """The JSON text of the events fanned out to every client, encoded once per event
    rather than once per client. Keyed by identity (the hub hands every subscriber the same
    event object); an entry keeps its event alive, so an id is never mistaken for a newer
    event's while cached."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._texts: OrderedDict[int, tuple[LiveEvent, str]] = OrderedDict()

    def text(self, event: LiveEvent) -> str:
        """The frame of `event` as JSON text."""
        cached = self._texts.get(id(event))
        if cached is not None and cached[0] is event:
            return cached[1]
        text = encode_frame(frame_of(event))
        self._texts[id(event)] = (event, text)
        if len(self._texts) > self._size:
            self._texts.popitem(last=False)
        return text
