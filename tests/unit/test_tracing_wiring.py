"""The composition root's tracing: off unless an endpoint is set, and then the producers'
log, the checkpoint store and the runtime all traced."""

from __future__ import annotations

from pipeline.adapters.memory import InMemoryEventLog, InMemorySchemaRegistry, InMemorySensorStore
from pipeline.adapters.telemetry.propagation import TracingEventLog
from pipeline.adapters.telemetry.tracing import OtelTracing, TracedCheckpointStore
from pipeline.application.tracing import NullTracing
from pipeline.entrypoints.bootstrap import bootstrap
from pipeline.entrypoints.settings import Settings, TracingSettings


async def wired(settings: Settings) -> tuple[object, object, object, object]:
    log = InMemoryEventLog()
    pipeline = await bootstrap(
        settings, log=log, registry=InMemorySchemaRegistry(), store=InMemorySensorStore()
    )
    try:
        run = pipeline.job_run("sensors")
        return log, pipeline.publishing_log, pipeline.checkpoint, run.tracing
    finally:
        await pipeline.aclose()


async def test_without_an_endpoint_nothing_is_traced_and_producers_use_the_plain_log() -> None:
    log, publishing, checkpoint, tracing = await wired(Settings())

    assert publishing is log
    assert not isinstance(checkpoint, TracedCheckpointStore)
    assert isinstance(tracing, NullTracing)


async def test_with_an_endpoint_the_producers_the_store_and_the_runtime_are_traced() -> None:
    # Nothing listens there: no span is exported by this test, which ends none.
    endpoint = "http://127.0.0.1:9"
    settings = Settings(tracing=TracingSettings(endpoint=endpoint))

    _, publishing, checkpoint, tracing = await wired(settings)

    assert isinstance(publishing, TracingEventLog)
    assert isinstance(checkpoint, TracedCheckpointStore)
    assert isinstance(tracing, OtelTracing)
