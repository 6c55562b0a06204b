"""The payments job end to end on the real stack: the generated payment stream (transactions,
account profiles, outcomes) and a few invalid transactions → Kafka (Avro, registry) → the
`payments` worker → PostgreSQL, with the worker killed by SIGKILL mid-stream.

What the tables must hold is what the same job gives on the deterministic driver over the
records as they lie in Kafka (same partitions, same order per partition): flagged
transactions, their reasons, outcomes and alerts, exactly once, and one dead letter per
invalid transaction."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.adapters.avro import account_profile_codec, payment_outcome_codec, transaction_codec
from pipeline.adapters.sql import SqlSensorStore, tables
from pipeline.application.generators.payments import PaymentsConfig, generate_payments
from pipeline.application.ports import (
    AlertFilter,
    Codec,
    DeadLetterFilter,
    Record,
    TopicPartition,
)
from pipeline.domain.alerts import AlertDomain
from pipeline.domain.fraud import FlaggedTransaction, FraudRule, TransactionOutcome
from pipeline.domain.payments import AccountProfile, Channel, Transaction
from pipeline.entrypoints.bootstrap import Pipeline, bootstrap
from pipeline.entrypoints.jobs import payments_config
from pipeline.entrypoints.settings import Settings, WorkerSettings
from pipeline.entrypoints.simulated import routes
from pipeline.entrypoints.worker import run_named_job
from pipeline.jobs.payments import ALERTS, FLAGGED, OUTCOMES, REASONS, payments_job
from pipeline.streams.testing import TestDriver
from tests.integration.conftest import settings_env

pytestmark = pytest.mark.integration

EVENTS = 8_000
SEED = 11
INVALID = 3
STREAM = PaymentsConfig(events_per_second=4.0, accounts=300, fraud_rate=0.03)
"""A slow stream of few accounts and much fraud: 8,000 events span about half an hour of
event time, long enough for the fraud episodes (minutes each) to play out."""


@pytest.fixture
def payments_settings(settings: Settings) -> Settings:
    # The partitions must not go idle while the restarted worker starts on a loaded machine:
    # their watermarks would jump to the wall clock, past the stream's event times.
    worker = WorkerSettings(**(settings.worker.model_dump() | {"idle_timeout_s": 3600.0}))
    return settings.model_copy(update={"worker": worker})


async def publish_stream(pipeline: Pipeline, *, profiles: bool) -> None:
    """The seeded payment stream, ending about now, onto its topics as the producer publishes
    it (keyed by account id): its account profiles, or the rest."""
    routing = routes(pipeline, "payments")
    start = datetime.now(UTC) - timedelta(hours=1)
    await pipeline.ensure_topics()
    for generated in itertools.islice(
        generate_payments(seed=SEED, start=start, config=STREAM), EVENTS
    ):
        event = generated.event
        if isinstance(event, AccountProfile) is profiles:
            route = routing[type(event)]
            await pipeline.log.publish(
                route.topic, route.key(event).encode(), await route.codec.encode(event)
            )
    await pipeline.log.flush()


async def publish_invalid(pipeline: Pipeline) -> None:
    """Transactions the Avro schema takes but the domain refuses (a negative amount)."""
    topic = pipeline.settings.topics.transactions
    codec = transaction_codec(pipeline.registry, topic)
    for n in range(INVALID):
        tx = Transaction(
            transaction_id=f"bad-{n}",
            account_id="acct-000001",
            amount=Decimal("-5.00"),
            currency="EUR",
            merchant="grocery-de-001",
            country="DE",
            channel=Channel.ONLINE,
            timestamp=datetime.now(UTC).replace(microsecond=0),
        )
        await pipeline.log.publish(topic, b"acct-000001", await codec.encode(tx))


async def expected_outputs(pipeline: Pipeline) -> dict[str, list[Any]]:
    """The payments job on the driver, over the three topics as Kafka holds them."""
    settings = pipeline.settings
    topics = settings.topics
    codecs: dict[str, Codec[Any]] = {
        topics.accounts: account_profile_codec(pipeline.registry, topics.accounts),
        topics.transactions: transaction_codec(pipeline.registry, topics.transactions),
        topics.payment_outcomes: payment_outcome_codec(pipeline.registry, topics.payment_outcomes),
    }
    job = payments_job(payments_config(settings))
    partitions = len(await pipeline.log.end_offsets(topics.transactions))
    driver = TestDriver(job, partitions=partitions, now=datetime.now(UTC))
    # The table first, as the worker read it before any payment (see the test).
    for topic, codec in codecs.items():
        ends = await pipeline.log.end_offsets(topic)
        start = {TopicPartition(topic, p): 0 for p in ends}
        reader = pipeline.log.reader(group_id="inspect-payments", start=start)
        records: list[Record] = []
        try:
            async with asyncio.timeout(60):
                while len(records) < sum(ends.values()):
                    records += await reader.poll(5000, 0.5)
        finally:
            await reader.close()
        values = await codec.decode_many([r.value for r in records])
        for record, value in sorted(
            zip(records, values, strict=True), key=lambda rv: (rv[0].partition, rv[0].offset)
        ):
            driver.send(topic, value, partition=record.partition)
        if topic == topics.accounts:
            driver.run()
    driver.run()
    sinks = (FLAGGED.name, REASONS.name, OUTCOMES.name, ALERTS.name)
    return {sink: driver.results(sink) for sink in sinks}


async def stored_rows(pipeline: Pipeline, table: sa.Table) -> list[Any]:
    assert isinstance(pipeline.store, SqlSensorStore)
    async with pipeline.store.engine.connect() as conn:
        return list((await conn.execute(sa.select(table))).all())


async def test_payments_land_exactly_once_through_a_sigkill_of_the_worker(
    payments_settings: Settings,
) -> None:
    settings = payments_settings
    pipeline = await bootstrap(settings, migrate=True)
    env = settings_env(settings) | {
        "PIPELINE_WORKER__BATCH_SIZE": "300",
        "PIPELINE_WORKER__IDLE_TIMEOUT_S": "3600",
    }
    worker_cmd = [sys.executable, "-m", "pipeline.entrypoints.worker", "payments"]
    try:
        # The bank knows its accounts before they pay: the worker has read the profiles when
        # the payments come (a stream–table join meets the table as it was when each record
        # was processed, so only then is the result the same whatever the interleaving).
        await publish_stream(pipeline, profiles=True)
        await asyncio.wait_for(run_named_job(pipeline, "payments", until_caught_up=True), 120)
        await publish_stream(pipeline, profiles=False)
        await publish_invalid(pipeline)
        expected = await expected_outputs(pipeline)
        assert expected[FLAGGED.name], "the seeded stream is expected to hold fraud"

        first = await asyncio.create_subprocess_exec(*worker_cmd, env=env)
        async with asyncio.timeout(180):
            while not await stored_rows(pipeline, tables.transaction_outcomes):
                await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        at_kill = len(await stored_rows(pipeline, tables.transaction_outcomes))
        assert 0 < at_kill < len(expected[OUTCOMES.name]), "the kill must land mid-stream"

        second = await asyncio.create_subprocess_exec(*worker_cmd, "--until-caught-up", env=env)
        assert await asyncio.wait_for(second.wait(), 300) == 0

        flagged = {
            r.transaction_id: FlaggedTransaction(
                transaction_id=r.transaction_id,
                account_id=r.account_id,
                amount=r.amount,
                currency=r.currency,
                merchant=r.merchant,
                country=r.country,
                channel=Channel(r.channel),
                timestamp=r.time,
                reasons=tuple(FraudRule(x) for x in r.reasons),
                score=r.score,
            )
            for r in await stored_rows(pipeline, tables.flagged_transactions)
        }
        assert flagged == {f.transaction_id: f for f in expected[FLAGGED.name]}
        reasons = {
            (r.transaction_id, r.rule)
            for r in await stored_rows(pipeline, tables.fraud_flag_reasons)
        }
        assert reasons == {(r.transaction_id, r.rule.value) for r in expected[REASONS.name]}
        outcomes = {
            (r.transaction_id, r.outcome)
            for r in await stored_rows(pipeline, tables.transaction_outcomes)
        }
        want: list[TransactionOutcome] = expected[OUTCOMES.name]
        assert outcomes == {(o.transaction_id, o.outcome) for o in want}
        assert len(outcomes) == len(want)
        alerts = await pipeline.store.find_alerts(
            AlertFilter(domain=AlertDomain.PAYMENTS), limit=10_000
        )
        assert sorted(a.alert.alert_id for a in alerts) == sorted(
            a.alert_id for a in expected[ALERTS.name]
        )
        assert await pipeline.store.unpublished_alerts(10) == []
        dead = await pipeline.dead_letter_store().find_dead_letters(
            DeadLetterFilter(topic=settings.topics.transactions)
        )
        assert [d.error_class for d in dead] == ["invalid_transaction"] * INVALID
    finally:
        await pipeline.aclose()
