"""`pipeline evaluate sensors`: detectors scored against the generator's labels."""

from __future__ import annotations

from pipeline.application.generators.base import AnomalyLabel, Generated
from pipeline.entrypoints.evaluate_sensors import evaluate, score_detector, stuck_echoes
from tests.unit.anomalies.builders import a_reading


def labelled(second: int, kind: str | None = None, anomaly: str = "a1") -> Generated:  # type: ignore[type-arg]
    label = None if kind is None else AnomalyLabel(kind=kind, anomaly_id=anomaly)
    return Generated(event=a_reading(20.0, second=second), label=label)


def test_precision_counts_the_false_alarms_against_each_kind() -> None:
    stream = [
        labelled(0),
        labelled(1),  # flagged: a false alarm
        labelled(2, "spike", "s1"),  # flagged
        labelled(3, "drift", "d1"),  # flagged
        labelled(4, "drift", "d1"),
        labelled(5, "drift", "d2"),
    ]
    flagged = {stream[i].event.key for i in (1, 2, 3)}

    scores = {s.kind: s for s in score_detector("x", flagged, stream)}

    assert (scores["spike"].precision, scores["spike"].recall) == (0.5, 1.0)
    assert (scores["drift"].precision, scores["drift"].recall) == (0.5, 1 / 3)
    assert (scores["drift"].events_detected, scores["drift"].events) == (1, 2)
    assert scores["stuck"].f1 == 0.0


def at(second: int, value: float, kind: str | None = None) -> Generated:  # type: ignore[type-arg]
    label = None if kind is None else AnomalyLabel(kind=kind, anomaly_id="a1")
    return Generated(event=a_reading(value, second=second), label=label)


def test_a_normal_reading_repeating_a_stuck_run_right_after_it_is_an_echo() -> None:
    stream = [
        at(0, 20.0),
        at(1, 20.0, "stuck"),
        at(2, 20.0, "stuck"),
        at(3, 20.0),  # echo
        at(4, 20.0),  # echo
        at(5, 20.1),
        at(6, 20.0),  # the same value again, but not right after the run
    ]

    assert stuck_echoes(stream) == {stream[3].event.key, stream[4].event.key}


def test_echoes_are_false_alarms_in_precision_and_not_in_the_clean_precision() -> None:
    stream = [
        at(0, 20.0),
        at(1, 20.0, "stuck"),
        at(2, 20.0),  # echo, flagged
        at(3, 20.5),  # flagged: a false alarm either way
        at(4, 90.0, "spike"),  # flagged
    ]
    flagged = {stream[i].event.key for i in (1, 2, 3, 4)}

    spike = {s.kind: s for s in score_detector("x", flagged, stream)}["spike"]

    assert (spike.precision, spike.precision_clean, spike.recall) == (1 / 3, 0.5, 1.0)


def test_threshold_rules_find_every_spike_and_the_z_score_nearly_none_falsely() -> None:
    rows = evaluate(events=12_000, seed=2, sensors=20, anomaly_rate=0.005)

    by = {(r.detector, r.kind): r for r in rows}
    assert {d for d, _ in by} == {"ml: forest", "ml: zscore", "threshold rules"}
    assert by["threshold rules", "spike"].recall == 1.0
    assert by["ml: zscore", "spike"].recall == 1.0
    assert by["ml: zscore", "spike"].precision > 0.8
