"""The blind sets (tests/data/guardrail/blind, blind_heldout, blind_heldout3, blind_heldout4 and
blind_heldout5, the development sets, and blind_heldout6, the held-out set of round 6; see their
READMEs): well
formed, and their figures are computed. No target is asserted here:
a test that failed below a target would invite tuning the rules to these cases;
tests/bench/guardrail.py reports the figures instead."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.guardrail import Guardrail  # noqa: E402
from app.reasoning import parse_reasoning  # noqa: E402
from tests.bench.guardrail import (BLIND, HELDOUT, HELDOUT3, HELDOUT4, HELDOUT5, HELDOUT6,  # noqa: E402
                                   evaluate, figures, load_cases, wilson)

KINDS = {"speed", "derived_kinematics", "probability", "count_mismatch", "negative_quantity",
         "letter_mismatch", "yes_no_mismatch", "option_not_offered", "timestamp",
         "height_or_mass"}
SETS = {"dev": BLIND, "dev2": HELDOUT, "dev3": HELDOUT3, "dev4": HELDOUT4, "dev5": HELDOUT5,
        "heldout6": HELDOUT6}
CASES = [c for folder in SETS.values() for c in load_cases(folder)]


@pytest.mark.parametrize("folder", SETS.values(), ids=SETS.keys())
def test_the_set_is_big_balanced_and_documented(folder):
    cases = load_cases(folder)
    assert (folder / "README.md").is_file()
    assert len(cases) >= 150
    assert len({c["id"] for c in cases}) == len(cases)
    labels = [c["label"] for c in cases]
    assert set(labels) == {"plausible", "implausible"}
    assert min(labels.count("plausible"), labels.count("implausible")) >= 0.4 * len(cases)
    assert {c["domain"] for c in cases} >= {"driving", "warehouse", "robotics", "sports"}
    assert {c.get("error_kind") for c in cases if c["label"] == "implausible"} == KINDS


def test_the_sets_are_apart():
    ids = [{c["id"] for c in load_cases(folder)} for folder in SETS.values()]
    assert sum(len(i) for i in ids) == len(set().union(*ids))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_each_case_is_well_formed(case):
    assert {"id", "domain", "label", "why", "question", "output"} <= set(case)
    if case["label"] == "implausible":
        assert case.get("error_kind") in KINDS
    parsed = parse_reasoning(case["output"])
    assert parsed.reasoning and parsed.answer is not None
    assert case.get("duration_s") is None or case["duration_s"] > 0


@pytest.mark.parametrize("folder", SETS.values(), ids=SETS.keys())
def test_figures_are_computed(folder):
    cases = load_cases(folder)
    counts, _ = evaluate(Guardrail.from_yaml(), cases)
    assert sum(counts.values()) == len(cases)
    for value, low, high in figures(counts).values():
        assert 0 <= low <= value <= high <= 1


def test_wilson_interval():
    low, high = wilson(58, 65)  # 0.892
    assert round(low, 3) == 0.794 and round(high, 3) == 0.947
    assert wilson(0, 0) == (0.0, 1.0) and wilson(10, 10)[1] == 1.0
