"""Every declared table sink of the installed jobs, by sink name (see `table_sinks`).

A domain adds its sinks here (one import and one `|`); the checkpoint stores of every
dialect bind them next to the sensor job's hand-tuned sinks."""

from __future__ import annotations

from typing import Any

from pipeline.adapters.sql.payment_sinks import PAYMENT_SINKS
from pipeline.adapters.sql.shop_store import SHOP_SINKS
from pipeline.adapters.sql.social_sinks import SOCIAL_SINKS
from pipeline.adapters.sql.table_sinks import TableSink

DECLARED_SINKS: dict[str, TableSink[Any]] = {} | SHOP_SINKS | PAYMENT_SINKS | SOCIAL_SINKS
