"""Loading the recipe's LLaVA JSON and JSONL, and what a malformed record becomes."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.eval.dataset import DatasetError, EvalItem, Problem, load_dataset, parse_options

DATA = Path(__file__).resolve().parents[1] / "data" / "eval"


def test_example_set_is_llava_with_categories(media_dir):
    entries = load_dataset(DATA / "example.json")
    assert len(entries) >= 12 and all(isinstance(e, EvalItem) for e in entries)
    assert {e.category for e in entries} == {"environment", "scene", "objects"}
    for e in entries:
        assert "<video>" not in e.question and "\nA: " in e.question
        assert list(e.options) == ["A", "B", "C", "D"] and e.expected in e.options
        assert (media_dir / e.media).is_file(), e.media
    first = entries[0]
    assert first.question == ("What is the weather in the video?\nA: Rain\nB: Snow\n"
                              "C: Clear and sunny\nD: Dense fog")
    assert first.expected == "C"


def test_jsonl_options_as_list_mapping_or_lines():
    j1, j2, j3 = load_dataset(DATA / "example.jsonl")
    assert j1.options["C"] == "Clear and sunny" and j1.question.endswith("\nD: Dense fog")
    assert j2.expected == "B"            # the answer given as the option's text
    assert j2.category is None
    assert j3.options == {"A": "A narrow alley", "B": "A multi-lane highway"}
    assert j3.expected == "B" and j3.question.startswith("What kind")


def test_malformed_records_become_problems_in_place():
    entries = load_dataset(DATA / "bad.json")
    ids = [e.id for e in entries]
    assert ids == ["ok-1", "missing-video", "no-answer", "answer-not-an-option", "no-media",
                   "#6", "#7", "ok-1#8", "ok-2"]
    problems = {e.id: e.error for e in entries if isinstance(e, Problem)}
    assert problems["no-answer"] == "item 3 (no-answer): no expected answer"
    assert "'D' is not one of the options A, B" in problems["answer-not-an-option"]
    assert "no 'video' or 'image'" in problems["no-media"]
    assert "no 'id'" in problems["#6"] and "not a JSON object" in problems["#7"]
    assert "duplicate id" in problems["ok-1#8"]
    # A missing clip is found when the item is asked (per item, in results.jsonl).
    assert isinstance(entries[1], EvalItem)


def test_unreadable_dataset(tmp_path):
    with pytest.raises(DatasetError, match="cannot read dataset"):
        load_dataset(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset(bad)
    (tmp_path / "obj.json").write_text('[]')
    with pytest.raises(DatasetError, match="no items"):
        load_dataset(tmp_path / "obj.json")


def test_jsonl_line_that_is_not_json(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"id": "a", "video": "x.mp4", "question": "Q?", "options": ["x", "y"], '
                 '"answer": "A"}\n{oops\n')
    a, b = load_dataset(f)
    assert isinstance(a, EvalItem) and isinstance(b, Problem)
    assert b.id == "#2" and "line 2 is not JSON" in b.error


def test_parse_options_needs_consecutive_letters():
    assert parse_options("Q\nA: x\n(B) y\nC. z") == {"A": "x", "B": "y", "C": "z"}
    assert parse_options("Q\nB: x\nC: y") == {}
