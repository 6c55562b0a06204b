"""The job dashboard's queries are scoped to the job picked in its drop-down (whether they
have data is checked against a real Prometheus in tests/integration/test_monitoring.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
JOB_DASHBOARD: dict[str, Any] = json.loads(
    (ROOT / "monitoring" / "grafana" / "dashboards" / "job.json").read_text()
)


def variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in JOB_DASHBOARD["templating"]["list"]}


def test_the_job_drop_down_offers_the_jobs_that_report_and_the_instances_follow_the_job() -> None:
    job, instance = variables()["job"], variables()["instance"]

    assert job["query"]["query"].endswith(", pipeline_job)")
    assert (job["includeAll"], job["multi"]) == (False, False)
    assert 'pipeline_job="$job"' in instance["query"]["query"]
    assert "allValue" not in instance  # "All" is the job's workers, not every worker


WITHOUT_JOB_LABEL = {
    "pipeline_outbox_backlog_alerts",
    "pipeline_model_scored_rows_total",
    "pipeline_model_scoring_seconds_total",
    "pipeline_model_info",
}
"""Process-wide metrics: read on the job's workers (the instance variable offers no others)."""


def test_every_series_a_panel_reads_belongs_to_the_chosen_job() -> None:
    read = set()
    for panel in JOB_DASHBOARD["panels"]:
        for target in panel.get("targets", ()):
            for metric, selector in re.findall(r"(\w+)\{([^}]*)\}", target["expr"]):
                read.add(metric)
                scope = (
                    'instance=~"$instance"'
                    if metric in WITHOUT_JOB_LABEL
                    else 'pipeline_job="$job"'
                )
                assert scope in selector, (panel["title"], metric, selector)
                assert 'job="pipeline-workers"' in selector, (panel["title"], selector)

    assert read >= WITHOUT_JOB_LABEL  # none listed needlessly
