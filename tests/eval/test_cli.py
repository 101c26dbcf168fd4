"""`cosmos-serve eval` end to end on the fast fake-engine server: the files, bad input, a wrong
key, an unreachable server, resume, compare, and the report in a real browser."""
from __future__ import annotations

import json
import shutil

import pytest

from app.eval.results import read_results
from tests.eval.browser import chromium_path, open_page
from tests.eval.conftest import API_KEY, DATA, REPO, run_eval


def _eval(server, out, *extra, dataset="example.json", key=API_KEY):
    return run_eval(DATA / dataset, "--base-url", server, "--api-key", key, "--out", out,
                    "--media-dir", REPO.parent / "shared" / "media", "--no-progress", *extra)


def lines(out) -> list[dict]:
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]


def test_help_names_the_flags_and_compare():
    r = run_eval("--help")
    assert r.returncode == 0
    for flag in ("--base-url", "--api-key", "--model", "--concurrency", "--profile", "--limit",
                 "--out", "--resume", "--media-dir", "--media-by-path", "eval compare"):
        assert flag in r.stdout, flag
    r = run_eval("compare", "--help")
    assert r.returncode == 0 and "McNemar" in r.stdout and "RUN_A" in r.stdout


def test_run_writes_results_summary_and_report(fake_server, tmp_path, media_dir):
    out = tmp_path / "run"
    r = _eval(fake_server, out, "--concurrency", "4", "--media-by-path")
    assert r.returncode == 0, r.stderr
    rows = lines(out)
    items = json.loads((DATA / "example.json").read_text())
    assert [x["id"] for x in rows] == [i["id"] for i in items]
    keys = {"id", "question", "options", "expected", "reasoning", "answer", "letter", "correct",
            "ttft_s", "latency_s", "tokens", "guardrail", "error"}
    for row in rows:
        assert keys <= set(row) and row["error"] is None
        assert row["letter"] == "B" and row["correct"] == (row["expected"] == "B")  # canned "B"
        assert row["reasoning"].startswith("The car ahead") and row["guardrail"] == "pass"
        assert 0 < row["ttft_s"] <= row["latency_s"]
        assert row["tokens"]["prompt"] > row["tokens"]["vision"] > 0
    s = json.loads((out / "summary.json").read_text())
    right = sum(i["conversations"][1]["value"] == "B" for i in items)
    assert s["accuracy"]["correct"] == right and s["accuracy"]["n"] == len(items)
    lo, hi = s["accuracy"]["ci95"]
    assert lo < right / len(items) < hi
    assert sum(c["n"] for c in s["by_category"].values()) == len(items)
    assert s["guardrail"]["pass"] == len(items) and s["unparsable"]["count"] == 0
    assert s["confusion"]["cols"] == ["A", "B", "C", "D", "none"]
    assert [row[1] for row in s["confusion"]["matrix"]] == [
        sum(i["conversations"][1]["value"] == x for i in items) for x in "ABCD"]
    assert s["throughput"]["items_per_s"] > 0 and s["latency_s"]["e2e"]["n"] == len(items)
    assert "accuracy" in r.stdout and "items/s" in r.stdout


def test_bad_items_are_recorded_per_item_and_the_run_goes_on(fake_server, tmp_path):
    out = tmp_path / "bad"
    r = _eval(fake_server, out, dataset="bad.json")
    assert r.returncode == 0, r.stderr           # two items could be evaluated
    rows = {x["id"]: x for x in lines(out)}
    assert len(rows) == 9
    assert rows["ok-1"]["correct"] is True and rows["ok-2"]["correct"] is True
    assert rows["missing-video"]["error"].startswith("video not found: ")
    assert rows["missing-video"]["error"].endswith("no_such_clip.mp4")
    assert "no expected answer" in rows["no-answer"]["error"]
    s = json.loads((out / "summary.json").read_text())
    assert s["items"] == {**s["items"], "total": 9, "evaluated": 2, "failed": 7}
    assert "failed missing-video: video not found" in r.stdout


def test_wrong_key_and_unreachable_server_fail_clearly_and_keep_the_run(fake_server, tmp_path):
    out = tmp_path / "run"
    assert _eval(fake_server, out, "--limit", "3").returncode == 0
    before = (out / "results.jsonl").read_text()

    r = _eval(fake_server, out, "--resume", key="wrong")
    assert r.returncode == 1
    assert "refused the API key" in r.stderr and "HTTP 401" in r.stderr
    r = _eval("http://127.0.0.1:9", out, "--resume")   # nothing listens on port 9
    assert r.returncode == 1 and "cannot reach the server at http://127.0.0.1:9/v1" in r.stderr
    assert (out / "results.jsonl").read_text() == before  # nothing written is lost

    r = _eval(fake_server, out)                         # the same --out without --resume
    assert r.returncode == 2 and "--resume" in r.stderr
    assert (out / "results.jsonl").read_text() == before


def test_resume_asks_only_what_is_missing_then_compare(fake_server, tmp_path):
    out = tmp_path / "a"
    assert _eval(fake_server, out, "--limit", "5").returncode == 0
    first = lines(out)
    r = _eval(fake_server, out, "--resume", "--concurrency", "3")
    assert r.returncode == 0, r.stderr
    assert "14 items, 5 already done, 9 to ask" in r.stderr
    rows = lines(out)
    assert len(rows) == 14 and rows[:5] == first      # the first five untouched, in order
    run = json.loads((out / "run.json").read_text())
    assert [s["items"] for s in run["sessions"]] == [5, 9]

    b = tmp_path / "b"
    shutil.copytree(out, b)
    res = (b / "results.jsonl").read_text().splitlines()
    flipped = json.loads(res[0])
    flipped.update(letter="A" if flipped["correct"] else flipped["expected"],
                   correct=not flipped["correct"])
    (b / "results.jsonl").write_text("\n".join([json.dumps(flipped)] + res[1:]) + "\n")
    r = run_eval("compare", out, b, "--out", tmp_path / "cmp")
    assert r.returncode == 0, r.stderr
    c = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert c["items"]["common"] == 14
    assert [f["id"] for f in c["flipped"]] == [flipped["id"]]
    assert c["difference"]["mcnemar_p"] == 1.0        # one discordant pair proves nothing
    assert abs(c["difference"]["accuracy_b_minus_a"]) == pytest.approx(1 / 14)
    assert flipped["id"] in r.stdout and "McNemar" in r.stdout


@pytest.mark.skipif(chromium_path() is None, reason="chromium not installed")
def test_report_renders_in_a_browser(fake_server, tmp_path):
    out = tmp_path / "run"
    assert _eval(fake_server, out).returncode == 0
    page = open_page(out / "report.html")
    assert page["exceptions"] == [] and page["requests"] == []
    assert [m for m in page["console"] if m["type"] in ("error", "warning")] == []
    assert [i["alt"] for i in page["images"]] == ["accuracy by category", "confusion matrix",
                                                   "latency histogram"]
    assert all(i["complete"] and i["width"] > 300 and i["height"] > 200 for i in page["images"])
    assert read_results(out)  # the page was made from this run
