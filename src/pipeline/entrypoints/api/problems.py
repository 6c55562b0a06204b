"""Errors as RFC 9457 problem details (`application/problem+json`): every error response,
including a bad parameter, says what was wrong in a readable `detail`."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.typing import FieldDefinition

from pipeline.application.errors import TransientError
from pipeline.entrypoints.api.models import Problem
from pipeline.entrypoints.api.params import BadParameter, expected

PROBLEM_JSON = "application/problem+json"
_DESCRIPTIONS = {
    400: "A parameter was refused: `detail` and `errors` say which, and what it takes.",
    401: "No valid API key in the X-API-Key header.",
    404: "Nothing there: `detail` says what was not found.",
    503: "The database is unavailable; retry after the Retry-After header's seconds.",
}

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


def _parameter(request: Request[Any, Any, Any], key: object) -> FieldDefinition | None:
    """The handler's definition of parameter `key`, if there is a handler and such a one."""
    try:
        found: FieldDefinition | None = request.route_handler.parsed_fn_signature.parameters.get(
            str(key)
        )
    except Exception:  # noqa: BLE001 - no handler (an unmatched route)
        return None
    return found


def _validation_detail(
    request: Request[Any, Any, Any], exc: ValidationException
) -> tuple[str, list[dict[str, Any]]]:
    errors = [e for e in exc.extra if isinstance(e, dict)] if isinstance(exc.extra, list) else []
    parts = []
    for error in errors:
        ours = isinstance(exc, BadParameter)
        parameter = _parameter(request, error["key"]) if "key" in error and not ours else None
        if parameter is not None:
            # The name the client used (`from`, not the handler's `start`), and what the
            # parameter takes in words rather than the validator's terms (`Expected
            # `int`, got `str``, a regular expression).
            alias = getattr(parameter.kwarg_definition, "name", None)
            error["key"] = alias or error["key"]
            if (words := expected(parameter)) is not None:
                error["message"] = words
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


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The OpenAPI description of the errors an operation answers with, as problems."""
    return {
        status: ResponseSpec(
            Problem,
            description=_DESCRIPTIONS[status],
            media_type=PROBLEM_JSON,
            generate_examples=False,
        )
        for status in statuses
    }
