"""summary.json and report.html from results, at the edges: all right, all wrong, unparsable,
failed items, a resumed run."""
from __future__ import annotations

import pytest

from app.eval.report import render_report
from app.eval.results import Result
from app.eval.summary import summarize

OPTS = {"A": "a", "B": "b", "C": "c", "D": "d"}


def result(i: int, expected: str, letter: str | None, category: str = "x", **kw) -> Result:
    return Result(id=f"i{i}", category=category, options=OPTS, expected=expected, letter=letter,
                  answer=letter or "???", correct=letter == expected, ttft_s=0.1 * i,
                  latency_s=0.2 * i + 0.1, tokens={"prompt": 100, "vision": None, "output": 8},
                  guardrail="pass", **kw)


RUN = {"model": "m", "dataset": "d.json", "sessions": [{"wall_s": 2.0, "items": 3},
                                                       {"wall_s": 2.0, "items": 1}]}


@pytest.mark.parametrize("letters", [["A", "B", "C", "D"], [None, None, "A", "B"],
                                     ["B", "B", "B", "B"]])
def test_summary_and_report_at_the_edges(letters):
    expected = ["A", "B", "C", "D"]
    results = [result(i, e, g, category="cat" + str(i % 2))
               for i, (e, g) in enumerate(zip(expected, letters), 1)]
    results.append(Result(id="bad", error="video not found: /x.mp4"))
    s = summarize(results, RUN)
    right = sum(e == g for e, g in zip(expected, letters))
    assert s["accuracy"]["correct"] == right and s["accuracy"]["n"] == 4
    assert s["items"]["failed"] == 1 and s["items"]["errors"][0]["id"] == "bad"
    assert s["unparsable"]["count"] == letters.count(None)
    assert s["throughput"]["items_per_s"] == 1.0 and s["throughput"]["sessions"] == 2
    assert s["tokens"]["vision"] == {"n": 0, "total": 0, "mean": None}  # not reported
    assert s["confusion"]["matrix"][0][4] == (letters[0] is None)
    html = render_report(s, results)
    assert html.count('src="data:image/png;base64,') == 3
    assert "video not found: /x.mp4" in html and "http://" not in html.replace(
        'http://www.w3.org', '')


def test_report_of_nothing_evaluated_still_renders():
    results = [Result(id="a", error="HTTP 400: bad")]
    s = summarize(results, {})
    assert s["accuracy"]["accuracy"] is None and s["throughput"]["items_per_s"] is None
    assert "HTTP 400: bad" in render_report(s, results)
