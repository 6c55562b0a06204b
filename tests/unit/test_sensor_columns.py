"""The sensor rules applied column-wise over a batch of rows (`domain/sensor_columns.py`)
agree with the domain's rules applied to each `Reading`: the same rows rejected, with the
same errors, the same rows passed — for every rule, broken or kept — and the threshold
screen names exactly the readings `check_threshold` raises an alert for."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain import DEFAULT_CATALOG, DEFAULT_THRESHOLDS, Reading, SensorCatalog, Threshold
from pipeline.domain.alerts import check_threshold
from pipeline.domain.errors import DomainError
from pipeline.domain.sensor_columns import (
    ReadingLike,
    ReadingRow,
    crosses,
    reading_of,
    row_of,
    suspect_rows,
)
from pipeline.domain.sensors import (
    DEFAULT_MAX_CLOCK_SKEW,
    MAX_IDENTIFIER_LENGTH,
    SensorKind,
    validate_reading,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SKEW = timedelta(minutes=5)
CATALOG = DEFAULT_CATALOG.with_kind(
    SensorKind(name="flow", unit="l/min", physical_min=0.0, physical_max=math.inf)
)


def rejections(
    rows: Sequence[ReadingLike],
    now: datetime,
    *,
    catalog: SensorCatalog = DEFAULT_CATALOG,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> dict[int, DomainError]:
    """The rows the domain rejects, by index, with the error `validate_reading` raises for
    each: the column-wise screen picks the suspects, the domain judges them."""
    found: dict[int, DomainError] = {}
    for i in suspect_rows(rows, now, catalog=catalog, max_clock_skew=max_clock_skew):
        try:
            validate_reading(
                reading_of(rows[i]), now=now, catalog=catalog, max_clock_skew=max_clock_skew
            )
        except DomainError as error:
            found[i] = error
    return found


# Values near and beyond every rule's edges, and the odd floats.
EDGY_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [-273.15, -273.16, 1000.0, 1000.0001, 0.0, -0.0, 100.0, 100.01, 10_000.0, -150.0, -150.1]
    ),
    st.floats(min_value=-300, max_value=1100),
)
IDENTIFIERS = st.one_of(
    st.sampled_from(["temp-0001", "hum-0002", "site-01/floor-1", "", "   ", "a\x00b", "tab\there"]),
    st.text(max_size=12),
    st.just("x" * MAX_IDENTIFIER_LENGTH),
    st.just("x" * (MAX_IDENTIFIER_LENGTH + 1)),
)
TIMES = st.one_of(
    st.integers(min_value=-86_400_000_000, max_value=86_400_000_000).map(
        lambda us: NOW + timedelta(microseconds=us)
    ),
    st.sampled_from([NOW + SKEW, NOW + SKEW + timedelta(microseconds=1)]),
    st.sampled_from(
        [
            NOW.replace(tzinfo=None),  # naive
            NOW.replace(tzinfo=timezone(timedelta(hours=2))),
            NOW.replace(tzinfo=timezone(timedelta(0))),  # UTC, another object
            NOW.replace(tzinfo=ZoneInfo("Europe/London")),  # UTC in winter only
            NOW.replace(month=7, tzinfo=ZoneInfo("Europe/London")),
        ]
    ),
)
TYPES_AND_UNITS = st.one_of(
    st.sampled_from(
        [
            ("temperature", "celsius"),
            ("humidity", "percent"),
            ("pressure", "hPa"),
            ("flow", "l/min"),
            ("temperature", "kelvin"),
            ("sonar", "m"),
        ]
    ),
    st.tuples(st.text(max_size=8), st.text(max_size=8)),
)
ROWS = st.builds(
    lambda sensor_id, kind, value, timestamp, location, battery, signal: ReadingRow(
        sensor_id, kind[0], value, kind[1], timestamp, location, battery, signal
    ),
    IDENTIFIERS,
    TYPES_AND_UNITS,
    EDGY_FLOATS,
    TIMES,
    IDENTIFIERS,
    st.one_of(st.none(), EDGY_FLOATS),
    st.one_of(st.none(), EDGY_FLOATS),
)
# Mostly valid rows, so that a batch mixes both outcomes.
VALID_ROWS = st.builds(
    lambda i, kind, value, seconds, battery, signal: ReadingRow(
        f"s-{i}", kind[0], value, kind[1], NOW - timedelta(seconds=seconds), "site", battery, signal
    ),
    st.integers(0, 50),
    st.sampled_from([("temperature", "celsius"), ("humidity", "percent")]),
    st.floats(min_value=0, max_value=100),
    st.integers(-300, 3600),
    st.one_of(st.none(), st.floats(0, 100)),
    st.one_of(st.none(), st.floats(-150, 0)),
)
BATCHES = st.lists(st.one_of(VALID_ROWS, ROWS), max_size=40)


def domain_verdicts(rows: list[ReadingRow]) -> dict[int, DomainError]:
    """What the domain says of each row, one Reading at a time."""
    found: dict[int, DomainError] = {}
    for i, row in enumerate(rows):
        try:
            validate_reading(reading_of(row), now=NOW, catalog=CATALOG, max_clock_skew=SKEW)
        except DomainError as error:
            found[i] = error
    return found


@settings(max_examples=400, deadline=None)
@given(BATCHES)
def test_column_wise_rejections_are_the_domains_rows_errors_and_reasons(
    rows: list[ReadingRow],
) -> None:
    expected = domain_verdicts(rows)

    found = rejections(rows, NOW, catalog=CATALOG, max_clock_skew=SKEW)

    assert {i: (type(e), str(e), e.rule) for i, e in found.items()} == {
        i: (type(e), str(e), e.rule) for i, e in expected.items()
    }


@settings(max_examples=400, deadline=None)
@given(BATCHES)
def test_the_screen_names_exactly_the_rows_the_domain_rejects(rows: list[ReadingRow]) -> None:
    # Never fewer (a rejected reading would be stored) and never more (a needless Reading).
    assert suspect_rows(rows, NOW, catalog=CATALOG, max_clock_skew=SKEW) == sorted(
        domain_verdicts(rows)
    )


def test_every_rule_is_screened_and_judged_by_the_domain() -> None:
    good = ReadingRow("t-1", "temperature", 20.0, "celsius", NOW, "site", 50.0, -60.0)
    broken = {
        "missing_identifier": good._replace(sensor_id=" "),
        "malformed_identifier": good._replace(location="a\nb"),
        "unknown_sensor_type": good._replace(sensor_type="sonar"),
        "unit_mismatch": good._replace(unit="kelvin"),
        "reading_out_of_range": good._replace(value=math.nan),
        "event_time_not_utc": good._replace(timestamp=NOW.replace(tzinfo=None)),
        "event_time_in_future": good._replace(timestamp=NOW + timedelta(hours=1)),
        "battery_level_out_of_range": good._replace(battery_level=101.0),
        "signal_strength_out_of_range": good._replace(signal_strength=math.inf),
    }
    rows = [good, *broken.values(), good]

    found = rejections(rows, NOW)

    assert sorted(found) == list(range(1, len(broken) + 1))
    assert [found[i].rule for i in sorted(found)] == list(broken)


def test_readings_and_rows_are_judged_alike() -> None:
    reading = Reading(
        sensor_id="t-1",
        sensor_type="temperature",
        value=2000.0,
        unit="celsius",
        timestamp=NOW,
        location="site",
    )

    assert row_of(reading) == ReadingRow("t-1", "temperature", 2000.0, "celsius", NOW, "site")
    assert reading_of(row_of(reading)) == reading
    assert list(rejections([reading, row_of(reading)], NOW)) == [0, 1]


LIMITS = st.builds(
    Threshold,
    sensor_type=st.just("temperature"),
    low=st.one_of(st.none(), st.floats(-50, 50)),
    high=st.one_of(st.none(), st.floats(-50, 50)),
    critical_low=st.one_of(st.none(), st.floats(-50, 50)),
    critical_high=st.one_of(st.none(), st.floats(-50, 50)),
)


@settings(max_examples=400, deadline=None)
@given(
    value=EDGY_FLOATS,
    limit=st.one_of(st.none(), LIMITS, st.sampled_from([*DEFAULT_THRESHOLDS.values()])),
)
def test_a_value_crosses_its_limit_exactly_when_the_domain_raises_an_alert(
    value: float, limit: Threshold | None
) -> None:
    reading = Reading(
        sensor_id="t-1",
        sensor_type="temperature",
        value=value,
        unit="celsius",
        timestamp=NOW,
        location="site",
    )

    assert crosses(value, limit) == (check_threshold(reading, limit) is not None)
