"""The blind set (tests/data/guardrail/blind, see its README): well formed, and its figures are
computed. No target is asserted here: a test that failed below a target would invite tuning the
rules to these cases; tests/bench/guardrail.py reports the figures instead."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.guardrail import Guardrail  # noqa: E402
from app.reasoning import parse_reasoning  # noqa: E402
from tests.bench.guardrail import BLIND, evaluate, figures, load_cases, wilson  # noqa: E402

KINDS = {"speed", "derived_kinematics", "probability", "count_mismatch", "negative_quantity",
         "letter_mismatch", "yes_no_mismatch", "option_not_offered", "timestamp",
         "height_or_mass"}
CASES = load_cases(BLIND)


def test_the_set_is_big_balanced_and_documented():
    assert (BLIND / "README.md").is_file()
    assert len(CASES) >= 150
    assert len({c["id"] for c in CASES}) == len(CASES)
    labels = [c["label"] for c in CASES]
    assert set(labels) == {"plausible", "implausible"}
    assert min(labels.count("plausible"), labels.count("implausible")) >= 0.4 * len(CASES)
    assert {c["domain"] for c in CASES} >= {"driving", "warehouse", "robotics", "sports"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_each_case_is_well_formed(case):
    assert {"id", "domain", "label", "why", "question", "output"} <= set(case)
    if case["label"] == "implausible":
        assert case.get("error_kind") in KINDS
    parsed = parse_reasoning(case["output"])
    assert parsed.reasoning and parsed.answer is not None
    assert case.get("duration_s") is None or case["duration_s"] > 0


def test_figures_are_computed():
    counts, _ = evaluate(Guardrail.from_yaml(), CASES)
    assert sum(counts.values()) == len(CASES)
    for value, low, high in figures(counts).values():
        assert 0 <= low <= value <= high <= 1


def test_wilson_interval():
    low, high = wilson(58, 65)  # 0.892
    assert round(low, 3) == 0.794 and round(high, 3) == 0.947
    assert wilson(0, 0) == (0.0, 1.0) and wilson(10, 10)[1] == 1.0
