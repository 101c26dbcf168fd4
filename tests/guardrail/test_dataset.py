"""The labelled outputs in tests/data/guardrail: the guardrail must catch the implausible ones
and leave the plausible ones alone (precision and recall >= 0.95), whole and streamed."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.guardrail import Guardrail, GuardrailContext, extract_choices
from app.reasoning import StreamingReasoningParser, parse_reasoning

DATA = Path(__file__).resolve().parents[1] / "data" / "guardrail"
CASES = [c for f in sorted(DATA.glob("*.yaml")) for c in yaml.safe_load(f.read_text())]


@pytest.fixture(scope="module")
def guardrail() -> Guardrail:
    return Guardrail.from_yaml()


def _context(case: dict) -> GuardrailContext:
    return GuardrailContext(duration_s=case.get("duration_s"),
                            choices=case.get("choices") or extract_choices(case["question"]),
                            truncated=bool(case.get("truncated")), question=case["question"])


def test_dataset_is_big_and_varied():
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert {c["id"].split("-")[0] for c in CASES} == {"drv", "rob", "wh", "spt"}
    labels = [c["label"] for c in CASES]
    assert set(labels) == {"plausible", "implausible"}
    assert min(labels.count("plausible"), labels.count("implausible")) >= 25
    assert all(c.get("expect") for c in CASES if c["label"] == "implausible")


def test_precision_and_recall(guardrail):
    tp = fp = fn = 0
    for case in CASES:
        ctx = _context(case)
        flagged = guardrail.check(parse_reasoning(case["output"], ctx.truncated), ctx).verdict != "pass"
        implausible = case["label"] == "implausible"
        tp += flagged and implausible
        fp += flagged and not implausible
        fn += implausible and not flagged
    assert tp / (tp + fp) >= 0.95
    assert tp / (tp + fn) >= 0.95


@pytest.mark.parametrize("case", [c for c in CASES if c["label"] == "implausible"],
                         ids=lambda c: c["id"])
def test_flagged_outputs_fire_the_expected_rules(guardrail, case):
    ctx = _context(case)
    fired = {f.rule_id for f in guardrail.check(parse_reasoning(case["output"], ctx.truncated),
                                                 ctx).findings}
    if fired:  # a missed case counts against recall above, not here
        assert set(case["expect"]) <= fired


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_streamed_output_gets_the_same_verdict(guardrail, case):
    ctx = _context(case)
    parser = StreamingReasoningParser()
    text = case["output"]
    for i in range(0, len(text), 7):  # token-sized deltas
        parser.feed(text[i:i + 7])
    parser.finish(truncated=ctx.truncated)
    streamed = guardrail.check(parser.result, ctx)
    assert streamed == guardrail.check(parse_reasoning(text, ctx.truncated), ctx)


def test_plausible_outputs_concatenated_still_pass(guardrail):
    # One long output: look-arounds must not reach from one paragraph into the next.
    plausible = [c for c in CASES if c["label"] == "plausible"]
    body = "\n\n".join(parse_reasoning(c["output"]).reasoning or "" for c in plausible)
    text = f"<think>\n{body}\n</think>\n\n<answer>\nB\n</answer>"
    longest = max(c["duration_s"] for c in plausible)
    assert guardrail.check(parse_reasoning(text), GuardrailContext(longest)).findings == []
