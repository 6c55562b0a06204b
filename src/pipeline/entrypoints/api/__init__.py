"""The HTTP API (Litestar): REST endpoints over the sensor projection, OpenAPI and docs.

`create_app(pipeline, settings)` builds the application; `pipeline api` serves it."""

from pipeline.entrypoints.api.app import build_app, create_app

__all__ = ["build_app", "create_app"]
