"""The time-series port on InfluxDB's v2 write API (`/api/v2/write`), through
influxdb-client's asyncio client.

Points go out in chunks of `batch_size` lines, each chunk one request, at millisecond
precision. A chunk answered with 429 or a 5xx, or that cannot reach the server, is sent
again after a backoff (doubling from `backoff_s` up to `max_backoff_s`, with full jitter,
at least the server's Retry-After) up to `retries` times; then TimeSeriesUnavailable, one
line naming the server. Any other 4xx is TimeSeriesRejected: the points themselves are
refused. The client is opened on first use: a process that never writes opens no connection.
Retries are logged at debug level only; the library itself logs nothing at INFO.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog
from influxdb_client import Point as InfluxPoint
from influxdb_client import WritePrecision
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.rest import ApiException

from pipeline.application.errors import TimeSeriesRejected, TimeSeriesUnavailable
from pipeline.application.ports.timeseries import Point

log = structlog.get_logger(__name__)

_RETRIED_STATUS = 429
_SERVER_ERROR = 500


class InfluxTimeSeries:
    """Writes points to an InfluxDB 2 bucket (or any server speaking its v2 write API:
    InfluxDB 1.8+, VictoriaMetrics)."""

    def __init__(
        self,
        *,
        url: str,
        token: str,
        org: str,
        bucket: str,
        batch_size: int = 5000,
        timeout_s: float = 10.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
    ) -> None:
        """`token` may be empty for a server without authentication."""
        self.url = url.rstrip("/")
        self._token = token
        self._org = org
        self._bucket = bucket
        self._batch_size = batch_size
        self._timeout_ms = int(timeout_s * 1000)
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._client: InfluxDBClientAsync | None = None

    def _opened(self) -> InfluxDBClientAsync:
        if self._client is None:
            self._client = InfluxDBClientAsync(
                url=self.url, token=self._token, org=self._org, timeout=self._timeout_ms
            )
        return self._client

    async def write(self, points: Sequence[Point]) -> None:
        """Send the points in chunks, retrying a chunk on 429, 5xx and connection errors."""
        if not points:
            return
        write_api = self._opened().write_api()
        size = self._batch_size
        for start in range(0, len(points), size):
            body = "\n".join(_line(p) for p in points[start : start + size])
            await self._send(write_api, body)

    async def _send(self, write_api: Any, body: str) -> None:
        attempt = 0
        while True:
            try:
                await write_api.write(
                    bucket=self._bucket,
                    org=self._org,
                    record=body,
                    write_precision=WritePrecision.MS,
                )
                return
            except ApiException as error:
                status = error.status or 0
                if status != _RETRIED_STATUS and status < _SERVER_ERROR:
                    raise TimeSeriesRejected(
                        f"time-series server {self.url} refused the points: "
                        f"HTTP {status} {_one_line(error.message)}"
                    ) from error
                failure: str = f"HTTP {status} {_one_line(error.message)}"
                retry_after = _seconds(error.retry_after)
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                failure = _one_line(str(error) or type(error).__name__)
                retry_after = 0.0
            attempt += 1
            if attempt > self._retries:
                raise TimeSeriesUnavailable(
                    f"time-series server {self.url} unreachable or failing "
                    f"after {attempt} attempts: {failure}"
                ) from None
            ceiling = min(self._max_backoff_s, self._backoff_s * 2 ** (attempt - 1))
            delay = max(retry_after, random.uniform(0, ceiling))
            log.debug("time-series write retried", server=self.url, after_s=delay, reason=failure)
            await asyncio.sleep(delay)

    async def ping(self) -> None:
        """Return when the server answers its /ping."""
        try:
            await self._opened().ping()
        except (ApiException, aiohttp.ClientError, TimeoutError, OSError) as error:
            reason = _one_line(str(error) or type(error).__name__)
            raise TimeSeriesUnavailable(
                f"time-series server {self.url} unreachable: {reason}"
            ) from None

    async def close(self) -> None:
        """Close the HTTP session (safe to call twice)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _line(point: Point) -> str:
    """The point in line protocol, at millisecond precision (influxdb-client escapes)."""
    out = InfluxPoint(point.measurement)
    for name, value in point.tags.items():
        out.tag(name, value)
    for name, field in point.fields.items():
        out.field(name, field)
    out.time(point.millis, WritePrecision.MS)
    line: str = out.to_line_protocol()
    return line


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())[:300]


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0
