"""`pipeline evaluate payments`: precision, recall and F1 of each rule against the labels of
its pattern, and of a model's flags per pattern, computed as defined (hand-checked cases),
and a short run end to end with the rules and the models."""

from __future__ import annotations

import pytest

from pipeline.application.generators.payments import FraudPattern, PaymentsConfig
from pipeline.entrypoints import cli
from pipeline.jobs.payments_evaluation import (
    ANY,
    Labelled,
    evaluate_payments,
    score_detector,
    score_rules,
)


def test_precision_recall_and_f1_per_rule_against_its_pattern_by_hand() -> None:
    truth = {
        "t1": Labelled("velocity", "e1"),
        "t2": Labelled("velocity", "e1"),
        "t3": Labelled("velocity", "e1"),
        "t4": Labelled("velocity", "e2"),
        "t5": Labelled("card_testing", "e3"),
        "t6": Labelled(),
        "t7": Labelled(),
    }
    flagged = {
        "t2": ["velocity"],
        "t3": ["velocity"],
        "t5": ["velocity", "card_testing"],  # card testing, also flagged as velocity
        "t6": ["card_testing"],  # normal
    }

    velocity, card_testing, any_rule = score_rules(truth, flagged, ["velocity", "card_testing"])

    # velocity: TP t2 t3; FP t5; FN t1 t4. Episodes e1 found, e2 not.
    assert (velocity.true_positives, velocity.flagged, velocity.labelled) == (2, 3, 4)
    assert velocity.precision == pytest.approx(2 / 3)
    assert velocity.recall == pytest.approx(2 / 4)
    assert velocity.f1 == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))
    assert (velocity.episodes, velocity.episodes_found) == (2, 1)
    # card testing: TP t5; FP t6.
    assert (card_testing.precision, card_testing.recall) == (0.5, 1.0)
    assert card_testing.episode_recall == 1.0
    # any: flagged t2 t3 t5 t6, labelled t1..t5: TP t2 t3 t5.
    assert any_rule.rule == ANY
    assert (any_rule.precision, any_rule.recall) == (pytest.approx(3 / 4), pytest.approx(3 / 5))


def test_a_rule_that_flags_nothing_has_no_precision_and_no_f1() -> None:
    [score, _] = score_rules({"t1": Labelled("amount_spike", "e1")}, {}, ["amount_spike"])

    assert (score.precision, score.recall, score.f1) == (None, 0.0, None)


def test_a_models_flags_are_scored_per_pattern_against_that_pattern_and_the_normal_ones() -> None:
    truth = {
        "t1": Labelled("velocity", "e1"),
        "t2": Labelled("velocity", "e1"),
        "t3": Labelled("velocity", "e2"),
        "t4": Labelled("card_testing", "e3"),
        "t5": Labelled(),
        "t6": Labelled(),
        "t7": Labelled(),
    }
    flagged = {"t1", "t4", "t5"}  # one velocity, the card test, one normal

    velocity, card_testing, any_flag = score_detector(truth, flagged, ["velocity", "card_testing"])

    # velocity: TP t1, flagged normal t5 (t4, another pattern's, counts for neither).
    assert (velocity.true_positives, velocity.flagged, velocity.labelled) == (1, 2, 3)
    assert velocity.precision == 0.5
    assert velocity.recall == pytest.approx(1 / 3)
    assert velocity.f1 == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert (velocity.episodes, velocity.episodes_found) == (2, 1)
    assert (card_testing.precision, card_testing.recall, card_testing.f1) == (0.5, 1.0, 2 / 3)
    # any: flagged t1 t4 t5, labelled t1..t4: TP t1 t4.
    assert any_flag.rule == ANY
    assert any_flag.precision == pytest.approx(2 / 3)
    assert any_flag.recall == 0.5
    assert (any_flag.episodes, any_flag.episodes_found) == (3, 2)


def test_a_short_run_finds_the_injected_fraud_with_few_false_alarms() -> None:
    evaluation = evaluate_payments(
        events=6_000, seed=3, config=PaymentsConfig(events_per_second=4.0, fraud_rate=0.02)
    )

    scores = {s.rule: s for s in evaluation.scores}
    assert set(scores) == {*(str(p) for p in FraudPattern), ANY}
    overall = scores[ANY]
    assert overall.labelled > 0
    assert overall.precision is not None
    assert overall.precision >= 0.9
    assert overall.recall is not None
    assert overall.recall >= 0.5


def test_the_evaluate_command_prints_the_rules_then_the_rules_and_the_models_per_pattern(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["evaluate", "payments", "--events", "6000", "--fraud-rate", "0.02"])

    out = capsys.readouterr().out
    assert code == 0
    rules_table, comparison = out.split("\n\n")
    assert "| rule | labelled | flagged | true pos. | precision | recall | F1 |" in rules_table
    rows = [line.split("|")[1].strip() for line in rules_table.splitlines() if line[:2] == "| "]
    patterns = [*(str(p) for p in FraudPattern), ANY]
    assert rows[1:] == patterns
    assert "| detector | pattern | labelled | flagged | true pos. |" in comparison
    cells = [
        [cell.strip() for cell in line.split("|")[1:3]]
        for line in comparison.splitlines()
        if line[:2] == "| "
    ][1:]
    assert cells == [
        [detector, pattern]
        for detector in ("rules", "ml: forest", "ml: zscore")
        for pattern in patterns
    ]


def test_the_evaluate_command_without_models_prints_the_rules_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["evaluate", "payments", "--events", "3000", "--models", "none"])

    out = capsys.readouterr().out
    assert code == 0
    assert "| rule | labelled |" in out
    assert "| detector |" not in out


def test_an_unknown_model_is_refused_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["evaluate", "payments", "--events", "10", "--models", "forest,gbm"])

    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "pipeline: error: --models 'forest,gbm': expected some of forest, zscore, or none"
    )


def test_a_rate_of_zero_is_refused_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["evaluate", "payments", "--events", "10", "--rate", "0"])

    assert code == 1
    assert capsys.readouterr().err.strip() == (
        "pipeline: error: payments need a positive rate and at least one account"
    )
