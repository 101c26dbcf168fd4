"""summary.json: what a run measured, from its results and its run.json."""
from __future__ import annotations

from collections import Counter

from app.eval import stats
from app.eval.results import Result


def summarize(results: list[Result], run: dict) -> dict:
    done = [r for r in results if r.evaluated]
    failed = [r for r in results if not r.evaluated]
    correct = sum(bool(r.correct) for r in done)
    unparsable = sum(r.letter is None for r in done)

    categories: dict[str, list[Result]] = {}
    for r in done:
        categories.setdefault(r.category or "(none)", []).append(r)
    by_category = {name: stats.accuracy(sum(bool(r.correct) for r in rs), len(rs))
                   for name, rs in sorted(categories.items())}

    letters = sorted({r.expected for r in done if r.expected}
                     | {k for r in done for k in r.options})
    verdicts = Counter(r.guardrail or "none" for r in done)
    # Each session (a run and every --resume of it) records its wall time and the items it
    # finished as it goes, so a killed session still counts.
    sessions = run.get("sessions", [])
    wall = sum(s.get("wall_s", 0.0) for s in sessions)
    items_per_s = sum(s.get("items", 0) for s in sessions) / wall if wall else None
    output_tokens = stats.token_stats([r.tokens.get("output") for r in done])
    return {
        "run": {k: run.get(k) for k in ("dataset", "base_url", "model", "profile", "concurrency",
                                        "media_by_path", "params", "extra_body", "started")},
        "items": {"total": len(results), "evaluated": len(done), "failed": len(failed),
                  "errors": [{"id": r.id, "error": r.error} for r in failed]},
        "accuracy": stats.accuracy(correct, len(done)),
        "unparsable": {"count": unparsable, "share": unparsable / len(done) if done else None},
        "by_category": by_category,
        "guardrail": {v: verdicts.get(v, 0) for v in ("pass", "flag", "block", "none")},
        "latency_s": {"ttft": stats.percentiles([r.ttft_s for r in done]),
                      "e2e": stats.percentiles([r.latency_s for r in done])},
        "tokens": {"prompt": stats.token_stats([r.tokens.get("prompt") for r in done]),
                   "vision": stats.token_stats([r.tokens.get("vision") for r in done]),
                   "output": output_tokens},
        "throughput": {"wall_s": wall, "items_per_s": items_per_s,
                       "output_tokens_per_s": items_per_s * output_tokens["mean"]
                       if items_per_s and output_tokens["mean"] else None,
                       "sessions": len(sessions)},
        "confusion": stats.confusion([(r.expected, r.letter) for r in done], letters),
    }
