"""The connector configs kept in the repository (`connectors/*.json`), resolved for a
deployment.

A config is a JSON object of string values. `${pipeline:KEY}` placeholders are filled in from
the pipeline's settings before the config is sent to Connect; Connect's own config providers
(`${env:VAR}`, `${file:…}`) are left for the Connect worker to resolve, so that secrets such as
the database password never travel in, nor are stored with, the connector config.

Per config, `connector.name` is `<prefix>-<file name>` (the name it is deployed under) and
`connector.slot` the same name as PostgreSQL allows it for a replication slot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.application.errors import ConfigurationError

_PLACEHOLDER = re.compile(r"\$\{pipeline:([A-Za-z0-9_.]+)\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorConfig:
    """One connector config of the repository, resolved."""

    key: str
    """The file name without `.json`: what `pipeline connect` commands are given."""
    name: str
    """The name the connector is deployed under: `<prefix>-<key>`."""
    config: dict[str, str]


def connectors_dir(configured: str | None = None) -> Path:
    """Where the connector configs are: `configured`, else the repository's `connectors/`
    (a source checkout), else the copy packaged as `pipeline/_connectors` (a wheel)."""
    if configured:
        return Path(configured)
    here = Path(__file__).resolve()
    for candidate in (here.parents[4] / "connectors", here.parents[2] / "_connectors"):
        if candidate.is_dir():
            return candidate
    raise ConfigurationError("no connector configs found: set PIPELINE_CONNECT__CONFIG_DIR")


def slot_name(name: str) -> str:
    """`name` as a PostgreSQL replication slot or publication name: lower case letters,
    digits and underscores, at most 63 characters."""
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:63]


def connector_configs(
    directory: Path, values: Mapping[str, str], *, prefix: str
) -> dict[str, ConnectorConfig]:
    """Every `<key>.json` of `directory` by key, its placeholders filled from `values`."""
    if not directory.is_dir():
        raise ConfigurationError(f"connector config directory {directory} does not exist")
    configs: dict[str, ConnectorConfig] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read connector config {path}: {exc}") from exc
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            raise ConfigurationError(f"{path}: a connector config is a JSON object of strings")
        name = f"{prefix}-{path.stem}"
        known = {**values, "connector.name": name, "connector.slot": slot_name(name)}
        configs[path.stem] = ConnectorConfig(
            key=path.stem,
            name=name,
            config={key: _resolve(path, value, known) for key, value in raw.items()},
        )
    return configs


def _resolve(path: Path, value: str, values: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:
            known = ", ".join(sorted(values))
            raise ConfigurationError(
                f"{path}: unknown placeholder ${{pipeline:{key}}} (known: {known})"
            )
        return values[key]

    return _PLACEHOLDER.sub(substitute, value)
