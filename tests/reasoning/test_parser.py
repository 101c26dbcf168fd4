"""Table of model outputs, each checked whole and as a stream split every possible way."""
from __future__ import annotations

from itertools import combinations

import pytest

from app.reasoning import Delta, ParsedOutput, StreamingReasoningParser, parse_reasoning

COSMOS = ("<think>\nThe ego vehicle approaches a crosswalk. A pedestrian is stepping off the curb "
          "on the right.\n\nThe safest action is to slow down and yield.\n</think>\n\n<answer>\n"
          "B\n</answer>")

# id, text, truncated, expect_reasoning, reasoning, answer, outcome
CASES = [
    ("canonical", "<think>\nR\n</think>\n\n<answer>\nA\n</answer>", False, True,
     "R", "A", "both_tags"),
    ("no_whitespace", "<think>R</think><answer>A</answer>", False, True, "R", "A", "both_tags"),
    ("extra_whitespace", " \n<think>\n\n  R1\n\nR2  \n</think>\n\n\n<answer>\n\n A \n</answer>\n\n",
     False, True, "R1\n\nR2", "A", "both_tags"),
    ("upper_case", "<THINK>R</Think>\n<ANSWER>A</Answer>", False, True, "R", "A", "both_tags"),
    ("spaced_tags", "<think >R< /think>\n<answer  >A</ answer>", False, True, "R", "A", "both_tags"),
    ("missing_open_think", "R\n</think>\n\n<answer>\nA\n</answer>", False, True,
     "R", "A", "both_tags"),
    ("only_closing_think", "R</think>\n\nA", False, True, "R", "A", "both_tags"),
    ("no_answer_tags", "<think>R</think>\n\nThe car yields.", False, True,
     "R", "The car yields.", "both_tags"),
    ("missing_close_think", "<think>R\n<answer>A</answer>", False, True, "R", "A", "both_tags"),
    ("no_tags", "The car is stopping.", False, True, None, "The car is stopping.", "none"),
    ("no_tags_eager", "The car is stopping.", False, False, None, "The car is stopping.", "none"),
    ("answer_only", "<answer>\nA\n</answer>", False, True, None, "A", "answer_only"),
    ("only_closing_answer", "A\n</answer>", False, True, None, "A", "answer_only"),
    ("empty_think", "<think>\n</think>\n\n<answer>\nA\n</answer>", False, True,
     "", "A", "answer_only"),
    ("empty_answer", "<think>R</think><answer>\n</answer>", False, True, "R", "", "both_tags"),
    ("reasoning_only", "<think>R</think>\n", False, True, "R", None, "reasoning_only"),
    ("unclosed_think_stop", "<think>R is", False, True, "R is", None, "truncated"),
    ("cut_in_think", "<think>\nR is long", True, True, "R is long", None, "truncated"),
    ("cut_in_answer", "<think>R</think>\n\n<answer>\nThe car will", True, True,
     "R", "The car will", "truncated"),
    ("cut_in_close_tag", "<think>R</think><answer>A</ans", True, True, "R", "A", "truncated"),
    ("cut_in_open_tag", "<think>R</think>\n\n<ans", True, True, "R", None, "truncated"),
    ("cut_untagged", "The car", True, True, None, "The car", "truncated"),
    ("unclosed_answer_stop", "<think>R</think><answer>A", False, True, "R", "A", "both_tags"),
    ("lt_at_end", "<think>R</think><answer>x <", False, True, "R", "x <", "both_tags"),
    ("text_before_think", "Okay. <think>R</think><answer>A</answer>", False, True,
     "Okay. R", "A", "both_tags"),
    ("text_after_answer", "<think>R</think><answer>A</answer>\nDone.", False, True,
     "R", "A\nDone.", "both_tags"),
    ("text_between", "<think>R</think>\nSo:\n<answer>A</answer>", False, True,
     "R", "So:\nA", "both_tags"),
    ("less_than_signs", "<think>x < y, a<b</think><answer>a <= b</answer>", False, True,
     "x < y, a<b", "a <= b", "both_tags"),
    ("tag_lookalikes", "<think>use <thinking> and <answers></think><answer>A</answer>",
     False, True, "use <thinking> and <answers>", "A", "both_tags"),
    ("doubled_answer_tags", "<think>R</think><answer><answer>A</answer></answer>", False, True,
     "R", "A", "both_tags"),
    ("empty", "", False, True, None, None, "none"),
    ("whitespace_only", " \n ", False, True, None, None, "none"),
    ("eager_canonical", "<think>\nR\n</think>\n\n<answer>\nA\n</answer>", False, False,
     "R", "A", "both_tags"),
    ("eager_missing_open_think", "R\n</think>\n\nA", False, False, "", "R\n\n\nA", "answer_only"),
    ("cosmos_style", COSMOS, False, True,
     "The ego vehicle approaches a crosswalk. A pedestrian is stepping off the curb on the "
     "right.\n\nThe safest action is to slow down and yield.", "B", "both_tags"),
]
IDS = [c[0] for c in CASES]


def _stream(pieces: list[str], truncated: bool, expect: bool) -> tuple[list[Delta], ParsedOutput]:
    parser = StreamingReasoningParser(expect_reasoning=expect)
    deltas = [d for p in pieces for d in parser.feed(p)]
    deltas += parser.finish(truncated=truncated)
    assert parser.result is not None
    return deltas, parser.result


def _joined(deltas: list[Delta], kind: str) -> str:
    assert all(d.text for d in deltas), "empty deltas must not be sent"
    return "".join(d.text for d in deltas if d.kind == kind)


def _splits(text: str, parts: int):
    for cuts in combinations(range(1, len(text)), parts - 1):
        bounds = (0, *cuts, len(text))
        yield [text[a:b] for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_whole_text(case):
    _, text, truncated, expect, reasoning, answer, outcome = case
    parsed = parse_reasoning(text, truncated=truncated, expect_reasoning=expect)
    assert (parsed.reasoning, parsed.answer, parsed.outcome) == (reasoning, answer, outcome)
    assert parsed.length == len(text)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_point_into_raw_text(case):
    _, text, truncated, expect, *_ = case
    parsed = parse_reasoning(text, truncated=truncated, expect_reasoning=expect)
    for value, runs in ((parsed.reasoning, parsed.reasoning_runs),
                        (parsed.answer, parsed.answer_runs)):
        for field_at, raw_at, n in runs:
            assert text[raw_at:raw_at + n] == value[field_at:field_at + n]
    if parsed.answer and len(parsed.answer_runs) == 1:
        assert text[slice(*parsed.answer_span)] == parsed.answer


@pytest.mark.parametrize("parts", [2, 3, "chars"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_stream_equals_whole(case, parts):
    _, text, truncated, expect, *_ = case
    whole = parse_reasoning(text, truncated=truncated, expect_reasoning=expect)
    if parts == "chars":
        splits = [list(text)]
    else:  # every way to cut the text in `parts` pieces; long texts get 2-splits only
        splits = list(_splits(text, parts)) if len(text) < 120 or parts == 2 else []
    for pieces in splits:
        deltas, result = _stream(pieces, truncated, expect)
        assert _joined(deltas, "reasoning") == (whole.reasoning or ""), pieces
        assert _joined(deltas, "content") == (whole.answer or ""), pieces
        assert result == whole, pieces


def test_reasoning_streams_before_the_answer_exists():
    parser = StreamingReasoningParser()
    assert parser.feed("<think>\nThe car") == [Delta("reasoning", "The car")]
    assert parser.feed(" is ") == [Delta("reasoning", " is")]  # trailing space held
    assert parser.feed("slowing.\n</thi") == [Delta("reasoning", " slowing.")]
    assert parser.feed("nk>\n\n<answer>\nB") == [Delta("content", "B")]
    assert parser.finish() == []
    assert parser.result.outcome == "both_tags"


def test_untagged_leading_text_waits_for_a_tag_unless_eager():
    held = StreamingReasoningParser()
    assert held.feed("The car stops.") == []
    assert held.finish() == [Delta("content", "The car stops.")]
    eager = StreamingReasoningParser(expect_reasoning=False)
    assert eager.feed("The car stops.") == [Delta("content", "The car stops.")]


def test_feed_after_finish_is_an_error():
    parser = StreamingReasoningParser()
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed("x")


def test_raw_span_maps_field_offsets():
    parsed = parse_reasoning(COSMOS)
    start = parsed.reasoning.index("pedestrian")
    span = parsed.raw_span("reasoning", start, start + len("pedestrian"))
    assert COSMOS[span[0]:span[1]] == "pedestrian"
    assert COSMOS[slice(*parsed.answer_span)] == "B"
