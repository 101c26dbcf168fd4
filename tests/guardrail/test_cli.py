"""`cosmos-serve guardrail`: model output on stdin, JSON on stdout."""
from __future__ import annotations

import io
import json

import pytest

from app.guardrail.cli import main

OUTPUT = ("<think>\nThe forklift moves at 65 km/h. At 14 s it stops. So the answer is B.\n</think>"
          "\n\n<answer>\nE\n</answer>")


def run(monkeypatch, capsys, argv: list[str], stdin: str = OUTPUT) -> tuple[int, dict | str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, json.loads(out) if rc == 0 else err


def test_prints_split_verdict_and_findings(monkeypatch, capsys):
    rc, out = run(monkeypatch, capsys, ["--duration", "5", "--choices", "A,B,C,D"])
    assert rc == 0
    assert out["reasoning"].startswith("The forklift") and out["answer"] == "E"
    assert out["verdict"] == "flag"
    assert {f["rule_id"] for f in out["findings"]} == {
        "speed.forklift", "time.after_clip_end", "choice.mismatch", "choice.not_offered"}
    f = next(f for f in out["findings"] if f["rule_id"] == "speed.forklift")
    assert OUTPUT[f["span"][0]:f["span"][1]] == "65 km/h" and f["source"] == "reasoning"


def test_without_context_only_text_rules_fire(monkeypatch, capsys):
    _, out = run(monkeypatch, capsys, [])
    assert {f["rule_id"] for f in out["findings"]} == {"speed.forklift", "choice.mismatch"}


def test_choices_come_from_the_question(monkeypatch, capsys):
    _, out = run(monkeypatch, capsys, ["--question", "Which?\nA. x\nB. y\nC. z\nD. w"])
    assert "choice.not_offered" in {f["rule_id"] for f in out["findings"]}


def test_policy_and_truncation(monkeypatch, capsys):
    _, out = run(monkeypatch, capsys, ["--policy", "critical=block"])
    assert out["verdict"] == "block"
    _, out = run(monkeypatch, capsys, ["--truncated"], "<think>\nThe car slows")
    assert out["outcome"] == "truncated" and out["answer"] is None
    assert {f["rule_id"] for f in out["findings"]} == {"format.no_answer", "format.truncated"}


@pytest.mark.parametrize("argv,error", [
    (["--rules", "/nonexistent/rules.yaml"], "No such file"),
    (["--policy", "critical=explode"], "bad policy item"),
])
def test_bad_arguments_exit_2(monkeypatch, capsys, argv, error):
    rc, err = run(monkeypatch, capsys, argv)
    assert rc == 2 and error in err
