"""A job rewound as `pipeline replay` rewinds a job under Kafka authority (its own group
moved back, its state emptied): from the new start it emits what its first run emitted,
except the windows already open there (never from part of their records), also when it
crashes after the rewind."""

from __future__ import annotations

from pipeline.streams import Count, Tumbling
from tests.unit.streams.window_jobs import (
    Event,
    driver_for,
    ms,
    results,
    seconds,
    send,
    windowed_job,
)

MINUTE = Tumbling(size=seconds(60), grace=seconds(0))


def stream(until: int = 300) -> list[Event]:
    """Key "a" every 10 s until second `until`: offset n is second 10 n."""
    return [Event("a", at) for at in range(0, until, 10)]


def test_a_rewound_job_emits_again_the_windows_starting_after_the_new_start() -> None:
    driver = driver_for(windowed_job(MINUTE, Count()))
    send(driver, *stream())
    driver.run()
    first = results(driver)
    assert len(first) == 4  # the fifth minute is still open

    driver.rewind(from_offset=9)  # second 90: the minute [60, 120) is open there
    driver.run()

    again = results(driver)[len(first) :]
    assert again == [r for r in first if r[1].start >= ms(120)]


def test_the_horizon_of_a_rewind_survives_a_crash() -> None:
    driver = driver_for(windowed_job(MINUTE, Count()))
    send(driver, *stream(until=320))
    driver.run()
    first = results(driver)
    assert len(first) == 5

    driver.rewind(from_offset=9)
    driver.run(batch_size=5, commit=False)  # seconds 90–280 committed, 290–310 lost
    driver.crash()
    driver.run()

    again = results(driver)[len(first) :]
    assert again == [r for r in first if r[1].start >= ms(120)]


def test_a_rewind_to_the_first_offset_emits_every_window_again() -> None:
    driver = driver_for(windowed_job(MINUTE, Count()))
    send(driver, *stream())
    driver.run()
    first = results(driver)

    driver.rewind(from_offset=0)
    driver.run()

    assert results(driver) == first + first
