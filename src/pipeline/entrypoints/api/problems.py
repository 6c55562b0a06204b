"""Errors as RFC 9457 problem details (`application/problem+json`): every error response,
including a bad parameter, says what was wrong in a readable `detail`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from pipeline.application.errors import TransientError

PROBLEM_JSON = "application/problem+json"

_log = structlog.get_logger("pipeline.api")


def _problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _public_name(request: Request[Any, Any, Any], key: object) -> object:
    """The name a client used for parameter `key`: `from`, not the handler's `start`."""
    try:
        parameter = request.route_handler.parsed_fn_signature.parameters.get(str(key))
    except Exception:  # noqa: BLE001 - no handler (an unmatched route): keep the key
        return key
    definition = parameter.kwarg_definition if parameter is not None else None
    alias = getattr(definition, "name", None)
    return alias or key


def _validation_detail(
    request: Request[Any, Any, Any], exc: ValidationException
) -> tuple[str, list[dict[str, Any]]]:
    errors = [e for e in exc.extra if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    parts = []
    for error in errors:
        if "key" in error:
            error["key"] = _public_name(request, error["key"])
        key, message = error.get("key"), error.get("message", "invalid")
        parts.append(f"{key}: {message}" if key else str(message))
    detail = "; ".join(parts) if parts else str(exc.detail)
    return detail, errors


def http_problem(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    """Any HTTP error Litestar or a handler raised (400, 401, 404, 405, …)."""
    headers = dict(exc.headers or {})
    if isinstance(exc, ValidationException):
        detail, errors = _validation_detail(request, exc)
        return _problem(exc.status_code, detail, headers=headers, errors=errors)
    return _problem(exc.status_code, str(exc.detail), headers=headers)


def unavailable_problem(
    request: Request[Any, Any, Any], exc: TransientError
) -> Response[dict[str, Any]]:
    """A dependency (database, broker) is down: 503, the client may retry."""
    _log.warning("api_dependency_unavailable", path=request.url.path, error=str(exc))
    return _problem(503, str(exc), headers={"Retry-After": "5"})


def internal_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    """A bug: logged with its traceback; the client gets no internals."""
    _log.exception("api_internal_error", path=request.url.path)
    return _problem(500, "internal server error; the error was logged")
