"""`pipeline-worker`'s end-of-run summary (`--stats-json`, the log line): every counter a
script or a dashboard reads, including where transient failures went."""

from __future__ import annotations

import json
from collections import Counter

from pipeline.application.runtime.stats import WorkerStats
from pipeline.entrypoints.worker import stats_summary


def test_the_summary_reports_rejections_retries_pauses_and_diversions_as_json() -> None:
    stats = WorkerStats(
        records=10,
        batches=2,
        written=Counter({"readings": 7, "aggregates_1m": 3}),
        late=2,
        rejected=Counter({"bad_magic_byte": 2, "store_rejected": 1}),
        retries=4,
        retried_in_place=3,
        sent_to_retry=Counter({"readings.retry.1": 5}),
        pauses=1,
        paused_seconds=20.94,
    )

    summary = json.loads(json.dumps(stats_summary(stats)))

    assert summary["rejected"] == {"bad_magic_byte": 2, "store_rejected": 1}
    assert (summary["retries"], summary["retried_in_place"]) == (4, 3)
    assert summary["sent_to_retry"] == {"readings.retry.1": 5}
    assert (summary["pauses"], summary["paused_seconds"]) == (1, 20.9)
    assert summary["records"] == 10
    assert summary["written"] == {"readings": 7, "aggregates_1m": 3}
    assert summary["late"] == 2
