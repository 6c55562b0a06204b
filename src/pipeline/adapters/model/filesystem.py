"""A model store in a directory: per model family a subdirectory (`<namespace>/`) holding
per version an artifact (`<version>.model`) and its metadata (`<version>.json`, with the
artifact's SHA-256), and `CURRENT` naming the promoted version. Written through a temporary
file and a rename, so a crash never leaves half a model."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path

from pipeline.adapters.model.artifacts import (
    artifact_of,
    checked_namespace,
    digest,
    model_from,
)
from pipeline.application.errors import ModelError, UnknownModel
from pipeline.application.ports.model import ModelInfo, ScoringModel

_CURRENT = "CURRENT"


def info_to_json(info: ModelInfo) -> dict[str, object]:
    """`info` as JSON-ready values."""
    fields = asdict(info)
    fields["trained_at"] = info.trained_at.isoformat()
    fields["features"] = list(info.features)
    fields["evaluation"] = dict(info.evaluation)
    return fields


def info_from_json(fields: dict[str, object]) -> ModelInfo:
    """The metadata `info_to_json` wrote."""
    try:
        return ModelInfo(
            version=str(fields["version"]),
            kind=str(fields["kind"]),
            trained_at=datetime.fromisoformat(str(fields["trained_at"])),
            sample_size=int(str(fields["sample_size"])),
            features=tuple(str(f) for f in fields["features"]),  # type: ignore[attr-defined]
            contamination=float(str(fields["contamination"])),
            evaluation={str(k): float(v) for k, v in fields["evaluation"].items()},  # type: ignore[attr-defined]
            accepted=bool(fields["accepted"]),
            digest=str(fields["digest"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(f"model metadata unreadable: {error}") from error


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class FilesystemModelStore:
    """The models of family `namespace` in `directory / namespace` (created on first
    save)."""

    def __init__(self, directory: Path, *, namespace: str) -> None:
        self.namespace = checked_namespace(namespace)
        self.directory = directory / namespace

    def _infos(self) -> list[ModelInfo]:
        if not self.directory.is_dir():
            return []
        infos = [
            info_from_json(json.loads(path.read_bytes())) for path in self.directory.glob("*.json")
        ]
        return sorted(infos, key=lambda i: (i.trained_at, i.version))

    def _info(self, version: str) -> ModelInfo:
        path = self.directory / f"{version}.json"
        if "/" in version or not path.is_file():
            raise UnknownModel(f"no model {version!r} in {self.directory}")
        return info_from_json(json.loads(path.read_bytes()))

    async def save(self, model: ScoringModel, info: ModelInfo) -> ModelInfo:
        """Store the artifact, then its metadata (with the digest)."""
        data = artifact_of(model)
        stored = replace(info, digest=digest(data))

        def write() -> None:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write(self.directory / f"{info.version}.model", data)
            _write(
                self.directory / f"{info.version}.json",
                json.dumps(info_to_json(stored), indent=2).encode(),
            )

        await asyncio.to_thread(write)
        return stored

    async def list(self) -> Sequence[ModelInfo]:
        """Every model, oldest first."""
        return await asyncio.to_thread(self._infos)

    async def info(self, version: str) -> ModelInfo:
        """The metadata of `version`."""
        return await asyncio.to_thread(self._info, version)

    async def load(self, version: str) -> ScoringModel:
        """The model `version`, its artifact checked against the recorded digest."""

        def read() -> ScoringModel:
            info = self._info(version)
            data = (self.directory / f"{version}.model").read_bytes()
            return model_from(data, info)

        return await asyncio.to_thread(read)

    async def current(self) -> str | None:
        """The promoted version, else the newest accepted one."""

        def find() -> str | None:
            marker = self.directory / _CURRENT
            if marker.is_file():
                return marker.read_text().strip() or None
            accepted = [i for i in self._infos() if i.accepted]
            return accepted[-1].version if accepted else None

        return await asyncio.to_thread(find)

    async def promote(self, version: str) -> None:
        """Make `version` current."""

        def write() -> None:
            self._info(version)
            _write(self.directory / _CURRENT, version.encode())

        await asyncio.to_thread(write)
