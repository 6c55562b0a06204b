"""`KafkaConnectClient`: the REST API of a Kafka Connect cluster (httpx), errors translated
into `ConnectorError`s that say what went wrong."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from pipeline.application.errors import ConnectorError

_REBALANCING_S: Final = 30.0
"""How long a request refused with 409 (the workers are rebalancing) is retried."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorStatus:
    """The state of a connector and of its tasks, as Connect reports it."""

    name: str
    state: str
    """RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING."""
    worker: str
    tasks: tuple[tuple[int, str, str], ...]
    """(task id, state, first line of its error trace or "")."""
    error: str = ""
    """The first line of the connector's own error trace, if it failed."""

    @property
    def running(self) -> bool:
        """The connector and every task run (a connector without tasks is not running yet)."""
        return (
            self.state == "RUNNING"
            and bool(self.tasks)
            and all(state == "RUNNING" for _, state, _ in self.tasks)
        )


class KafkaConnectClient:
    """Deploys, inspects, restarts and deletes connectors through Connect's REST API
    (`transport`: another httpx transport, e.g. `httpx.MockTransport` in tests)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self._url, timeout=timeout, transport=transport)

    async def deploy(self, name: str, config: Mapping[str, str]) -> bool:
        """Create connector `name` or update its config; True when it was created."""
        response = await self._request("PUT", f"/connectors/{name}/config", json=dict(config))
        return response.status_code == httpx.codes.CREATED

    async def status(self, name: str) -> ConnectorStatus | None:
        """The connector's state, or None when no connector has that name."""
        response = await self._request("GET", f"/connectors/{name}/status", missing_ok=True)
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        body = response.json()
        connector = body.get("connector", {})
        return ConnectorStatus(
            name=body.get("name", name),
            state=connector.get("state", "UNKNOWN"),
            worker=connector.get("worker_id", ""),
            tasks=tuple(
                (int(task["id"]), task.get("state", "UNKNOWN"), _first_line(task.get("trace")))
                for task in sorted(body.get("tasks", []), key=lambda t: int(t["id"]))
            ),
            error=_first_line(connector.get("trace")),
        )

    async def restart(self, name: str) -> None:
        """Restart the connector and all its tasks."""
        await self._request(
            "POST",
            f"/connectors/{name}/restart",
            params={"includeTasks": "true", "onlyFailed": "false"},
        )

    async def delete(self, name: str) -> bool:
        """Delete the connector; False when there was none of that name."""
        response = await self._request("DELETE", f"/connectors/{name}", missing_ok=True)
        return response.status_code != httpx.codes.NOT_FOUND

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def _request(
        self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any
    ) -> httpx.Response:
        deadline = time.monotonic() + _REBALANCING_S
        while True:
            try:
                response = await self._client.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise ConnectorError(
                    f"cannot reach Kafka Connect at {self._url} ({type(exc).__name__}: {exc}): "
                    "is it running? (PIPELINE_CONNECT__URL)"
                ) from exc
            if response.status_code == httpx.codes.CONFLICT and time.monotonic() < deadline:
                await asyncio.sleep(0.5)  # the workers are rebalancing: ask again
                continue
            if response.is_success or (missing_ok and response.status_code == 404):
                return response
            raise ConnectorError(
                f"Kafka Connect refused {method} {path}: "
                f"HTTP {response.status_code}: {_message(response)}"
            )


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict) and "message" in body:
        return " ".join(str(body["message"]).split())
    return str(body)[:500]


def _first_line(trace: object) -> str:
    return str(trace).strip().splitlines()[0] if trace else ""
