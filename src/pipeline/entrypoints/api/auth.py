"""API keys: clients send `X-API-Key`; settings hold only the keys' SHA-256 digests, compared
in constant time so response timing reveals nothing about a configured digest."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

API_KEY_HEADER = "X-API-Key"


def key_matches(key: str, digests: Sequence[bytes]) -> bool:
    """Whether `key` hashes to one of `digests`. Every digest is compared (no early exit)."""
    presented = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(presented, digest)
    return matched


def api_key_guard(key_hashes: Sequence[str]) -> Guard:
    """A guard admitting requests whose `X-API-Key` hashes to one of `key_hashes` (hex
    SHA-256). With no hashes configured nothing is admitted."""
    digests = [bytes.fromhex(h) for h in key_hashes]

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key = connection.headers.get(API_KEY_HEADER)
        if not key or not key_matches(key, digests):
            raise NotAuthorizedException(
                f"a valid API key is required in the {API_KEY_HEADER} header",
                headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'},
            )

    return guard
