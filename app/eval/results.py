"""A run directory: results.jsonl (one line per item), run.json (how it was run), summary.json.

Each finished item is appended and flushed at once, so a run killed at any point keeps every
item it finished; a torn last line (a kill mid-write) is skipped on reading. `--resume` reads the
lines back, skips the items that have an answer and asks the rest again; the newest line of an
item wins, and at the end results.jsonl is rewritten in dataset order, one line per item,
through a temporary file so that the old one stays whole until the new one is.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

RESULTS = "results.jsonl"
RUN = "run.json"
SUMMARY = "summary.json"
REPORT = "report.html"


class Result(BaseModel):
    id: str
    category: str | None = None
    media: str | None = None
    question: str | None = None
    options: dict[str, str] = {}
    expected: str | None = None
    reasoning: str | None = None
    answer: str | None = None
    letter: str | None = None
    correct: bool | None = None      # None: not evaluated (see error)
    ttft_s: float | None = None
    latency_s: float | None = None
    tokens: dict = {"prompt": None, "vision": None, "output": None}
    guardrail: str | None = None     # the server's verdict: pass, flag or block
    finish_reason: str | None = None
    attempts: int = 0
    error: str | None = None

    @property
    def evaluated(self) -> bool:
        return self.error is None and self.correct is not None


def read_results(out: Path) -> dict[str, Result]:
    """The newest line of each item; unreadable lines are skipped."""
    path = out / RESULTS
    found: dict[str, Result] = {}
    if not path.exists():
        return found
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                r = Result.model_validate_json(line)
            except ValueError:
                continue
            found[r.id] = r
    return found


class ResultWriter:
    """Appends one line per finished item and flushes it to disk."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / RESULTS
        # A torn line left by a kill would glue itself to the next one: start on a fresh line.
        torn = self.path.exists() and self.path.stat().st_size and \
            not self.path.read_bytes().endswith(b"\n")
        self.f = self.path.open("a", encoding="utf-8")
        if torn:
            self.f.write("\n")

    def write(self, result: Result) -> None:
        self.f.write(result.model_dump_json() + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def rewrite_results(out: Path, order: list[str]) -> list[Result]:
    """results.jsonl as one line per item, in `order` (items not in it follow)."""
    found = read_results(out)
    rank = {item_id: i for i, item_id in enumerate(order)}
    ordered = sorted(found.values(), key=lambda r: rank.get(r.id, len(rank)))
    tmp = out / (RESULTS + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in ordered:
            f.write(r.model_dump_json() + "\n")
    os.replace(tmp, out / RESULTS)
    return ordered


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
