"""Every window step counts the windows it closes (what `pipeline_windows_closed_total`
reports), in final and updates mode alike."""

from __future__ import annotations

import pytest

from pipeline.streams import Hopping, Session, Sliding, Tumbling
from pipeline.streams.testing import TestDriver
from pipeline.streams.windows import WindowKind
from tests.unit.streams.test_top_k_step import trending_job
from tests.unit.streams.window_jobs import Event, driver_for, seconds, send, windowed_job

# Keys a and b; then a record at 100 s moves the watermark past every earlier window.
EVENTS = (Event("a", 1), Event("a", 4), Event("b", 12), Event("a", 13), Event("a", 100))


@pytest.mark.parametrize(
    ("kind", "closed"),
    [
        (Tumbling(size=seconds(10), grace=seconds(0)), 3),  # a [0,10), b [10,20), a [10,20)
        (Hopping(size=seconds(10), advance=seconds(5), grace=seconds(0)), 6),  # a: 4, b: 2
        (Session(gap=seconds(5), grace=seconds(0)), 3),  # a {1, 4}, b {12}, a {13}
        (Sliding(size=seconds(10), grace=seconds(0)), 4),  # one per distinct record time
    ],
    ids=["tumbling", "hopping", "session", "sliding"],
)
@pytest.mark.parametrize("final", [True, False], ids=["final", "updates"])
def test_a_window_step_counts_the_windows_it_closes(
    kind: WindowKind, closed: int, final: bool
) -> None:
    driver = driver_for(windowed_job(kind, final=final))
    send(driver, *EVENTS)

    driver.run()

    assert driver.task.windows_closed() == {"window": closed}


def test_a_ranking_step_counts_its_windows_too() -> None:
    driver = TestDriver(trending_job(), partitions=1, now=EVENTS[0].time)
    send(driver, *EVENTS)

    driver.run()

    assert driver.task.windows_closed() == {"counts": 3, "top": 2}  # per partition window
