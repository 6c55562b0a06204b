"""`pipeline bench sensors --embedded`: the benchmark runs on the embedded default with no
service and stores every reading it published (its figures are not checked: they depend on
the machine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.entrypoints.cli import main


@pytest.mark.parametrize("rate", ["0", "2000"])
def test_the_embedded_bench_stores_every_reading_and_prints_its_figures(
    rate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", "PIPELINE_REGISTRY__URL"):
        monkeypatch.delenv(name, raising=False)  # the stack's, when exported: not used
    monkeypatch.chdir(tmp_path)

    code = main(["bench", "sensors", "--embedded", "--events", "3000", "--sensors", "10",
                 "--rate", rate])  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    produced = int(re.search(r"--embedded: ([\d,]+) readings", out)[1].replace(",", ""))  # type: ignore[index]
    assert f"worker: {produced:,} rows inserted" in out
    assert "readings per CPU second" in out
    assert "p99" in out
    assert "peak RSS" in out


@pytest.mark.parametrize(
    "extra",
    [["--floor", "1"], ["--ml"], ["--metrics-port", "0"], ["--rates", "1000"]],
    ids=["floor", "ml", "metrics", "rates"],
)
def test_the_embedded_bench_refuses_what_needs_the_stack(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", "sensors", "--embedded", *extra])

    assert code == 2
    assert "--embedded benchmarks `sensors` alone" in capsys.readouterr().err


def test_the_embedded_bench_is_for_the_sensors_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "shop", "--embedded"]) == 2
    assert "--embedded benchmarks `sensors` alone" in capsys.readouterr().err
