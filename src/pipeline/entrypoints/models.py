"""Anomaly scoring for a worker (the model it starts with, retraining beside it), per model
family (`sensors`, `payments`: each its own namespace in the model store, its features and
its trainer), and `pipeline models [--namespace N] list|show|promote|rollback`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pipeline.adapters.model import FilesystemModelStore, ZScoreModel, trainer_for
from pipeline.adapters.model.filesystem import info_to_json
from pipeline.application.errors import ModelError
from pipeline.application.ports.model import ModelStore, ModelTrainer, ScoringModel
from pipeline.application.ports.telemetry import Telemetry
from pipeline.application.scoring import LiveModel, Retrainer, RetrainPolicy
from pipeline.domain import DEFAULT_CATALOG
from pipeline.entrypoints.runtime import EXIT_FAILURE, EXIT_OK
from pipeline.entrypoints.settings import Settings
from pipeline.jobs.payment_features import (
    FOREST_FEATURES,
    FOREST_MAX_SAMPLES,
    FOREST_TREES,
    PAYMENT_FEATURES,
)
from pipeline.jobs.sensor_anomalies import feature_names

log = logging.getLogger(__name__)
DEFAULT_VERSION = "zscore-default"
"""The model a worker starts with when the store holds none: the untrained z-score."""


def payments_trainer(kind: str, contamination: float) -> ModelTrainer:
    """The trainer of `kind` over the payment features (a forest on `FOREST_FEATURES` of
    them, with more trees than the sensors')."""
    if kind == "forest":
        from pipeline.adapters.model.forest import ForestTrainer  # noqa: PLC0415 - optional

        columns = tuple(PAYMENT_FEATURES.index(name) for name in FOREST_FEATURES)
        return ForestTrainer(
            columns, contamination, trees=FOREST_TREES, max_samples=FOREST_MAX_SAMPLES
        )
    return trainer_for(kind, features=PAYMENT_FEATURES, contamination=contamination)


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """The models of one kind of record: their namespace in the store, the feature rows
    they score, how one is fitted, and the settings that turn scoring on."""

    namespace: str
    features: tuple[str, ...]
    trainer: Callable[[str, float], ModelTrainer]
    """(model kind, contamination) → trainer."""
    enabled: Callable[[Settings], bool]
    contamination: Callable[[Settings], float]


FAMILIES: dict[str, ModelFamily] = {
    "sensors": ModelFamily(
        namespace="sensors",
        features=feature_names(DEFAULT_CATALOG),
        trainer=lambda kind, c: trainer_for(
            kind, features=feature_names(DEFAULT_CATALOG), contamination=c
        ),
        enabled=lambda s: s.anomaly.enabled,
        contamination=lambda s: s.anomaly.contamination,
    ),
    "payments": ModelFamily(
        namespace="payments",
        features=PAYMENT_FEATURES,
        trainer=payments_trainer,
        enabled=lambda s: s.payments.scoring,
        contamination=lambda s: s.payments.contamination,
    ),
}
"""Every model family, by namespace."""


@contextlib.asynccontextmanager
async def model_store(settings: Settings, namespace: str) -> AsyncIterator[ModelStore]:
    """The store of family `namespace` the settings choose: a directory's subdirectory, or
    its rows of the database's `anomaly_models` table (the engine disposed when the block
    ends)."""
    if settings.anomaly.store == "filesystem":
        yield FilesystemModelStore(settings.anomaly.store_dir, namespace=namespace)
        return
    from pipeline.adapters.model.sql import SqlModelStore  # noqa: PLC0415 - database on demand
    from pipeline.adapters.sql import create_engine  # noqa: PLC0415

    engine = create_engine(settings.database.url.get_secret_value(), pool_size=1, max_overflow=1)
    try:
        yield SqlModelStore(engine, namespace=namespace)
    finally:
        await engine.dispose()


async def starting_model(store: ModelStore, features: tuple[str, ...]) -> ScoringModel:
    """The store's current model, else the untrained z-score (a cold start)."""
    version = await store.current()
    if version is None:
        return ZScoreModel(DEFAULT_VERSION, features.index("zscore"))
    return await store.load(version)


@contextlib.asynccontextmanager
async def anomaly_scoring(
    settings: Settings, telemetry: Telemetry, family: ModelFamily
) -> AsyncIterator[LiveModel]:
    """The live model a worker scores `family`'s records with, retrained beside it until
    the block ends."""
    anomaly = settings.anomaly
    contamination = family.contamination(settings)
    async with contextlib.AsyncExitStack() as scope:
        store = await scope.enter_async_context(model_store(settings, family.namespace))
        live = await _scoring(settings, telemetry, store, family)
        retrainer = Retrainer(
            live,
            family.trainer(anomaly.model, contamination),
            store,
            features=family.features,
            policy=RetrainPolicy(
                every_readings=anomaly.retrain_every_readings,
                every=anomaly.retrain_every_s,
                min_sample=anomaly.min_sample,
                contamination=contamination,
            ),
        )
        task = asyncio.create_task(retrainer.run(), name=f"retraining {family.namespace}")
        try:
            yield live
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _scoring(
    settings: Settings, telemetry: Telemetry, store: ModelStore, family: ModelFamily
) -> LiveModel:
    live = LiveModel(
        await starting_model(store, family.features),
        sample_size=settings.anomaly.sample_size,
        on_scored=telemetry.model_scored,
    )
    log.info("%s scoring with model %s", family.namespace, live.model.version)
    return live


def add_models_commands(commands: Any) -> None:
    """`pipeline models …`."""
    models = commands.add_parser("models", help="the anomaly models in the model store")
    models.add_argument(
        "--namespace",
        choices=sorted(FAMILIES),
        default="sensors",
        help="the model family (default: sensors)",
    )
    actions = models.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every stored model, oldest first (* marks the current)")
    show = actions.add_parser("show", help="one model's metadata as JSON")
    show.add_argument("version", help="the model's version (see `pipeline models list`)")
    promote = actions.add_parser("promote", help="make a version the one workers load")
    promote.add_argument("version", help="the model's version (see `pipeline models list`)")
    actions.add_parser("rollback", help="make the accepted version before the current one current")


async def run_models(args: argparse.Namespace, settings: Settings) -> int:
    """`pipeline models …`: list, show, promote or roll back."""
    async with model_store(settings, args.namespace) as store:
        return await _models_action(args, store)


async def _models_action(args: argparse.Namespace, store: ModelStore) -> int:
    action = args.models_action
    try:
        if action == "list":
            current = await store.current()
            for info in await store.list():
                mark = "*" if info.version == current else " "
                state = "accepted" if info.accepted else "refused"
                print(
                    f"{mark} {info.version}  {info.kind}  {info.trained_at:%Y-%m-%d %H:%M:%S}  "
                    f"sample {info.sample_size}  {state}  "
                    f"false alarms {info.evaluation.get('false_alarm_rate', float('nan')):.4f}"
                )
        elif action == "show":
            print(json.dumps(info_to_json(await store.info(args.version)), indent=2))
        elif action == "promote":
            await store.promote(args.version)
            print(f"current model: {args.version}")
        else:
            current = await store.current()
            accepted = [i.version for i in await store.list() if i.accepted]
            earlier = accepted[: accepted.index(current)] if current in accepted else []
            if not earlier:
                print(f"pipeline models: no accepted model before {current}", file=sys.stderr)
                return EXIT_FAILURE
            await store.promote(earlier[-1])
            print(f"current model: {earlier[-1]} (was {current})")
    except ModelError as error:
        print(f"pipeline models: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
