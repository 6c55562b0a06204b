"""The domain benchmarks' one run loop: each domain names real topics and registered jobs,
and none runs without the real stack."""

from __future__ import annotations

import pytest

from pipeline.entrypoints import cli
from pipeline.entrypoints.bench_domains import BENCHES
from pipeline.entrypoints.jobs import JOBS
from pipeline.entrypoints.settings import Settings, TopicSettings


@pytest.mark.parametrize("domain", sorted(BENCHES))
def test_a_domain_bench_renames_real_topics_and_runs_registered_jobs(domain: str) -> None:
    bench = BENCHES[domain]

    assert set(bench.topics) <= set(TopicSettings.model_fields)
    assert set(bench.jobs) <= set(JOBS)
    # Every topic the domain's jobs read is one the run gives a fresh name (no job drains
    # a topic other runs or other people share).
    renamed = {getattr(Settings().topics, field) for field in bench.topics}
    for job in bench.jobs:
        built = JOBS[job].build(Settings())
        assert set(built.sources) | set(built.tables) <= renamed


@pytest.mark.parametrize("domain", sorted(BENCHES))
def test_a_domain_bench_without_the_real_stack_is_a_usage_error(
    domain: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever stack the shell running the tests points at (scripts/test exports one).
    monkeypatch.delenv("PIPELINE_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("PIPELINE_DATABASE__URL", raising=False)
    assert cli.main(["bench", domain, "--events", "10"]) == 2
    assert "needs real Kafka and PostgreSQL" in capsys.readouterr().err
