"""`cosmos-serve eval DATASET --base-url URL` and `cosmos-serve eval compare RUN_A RUN_B`.

Exit status: 0 when at least one item was evaluated (items that failed are listed in
summary.json and report.html), 1 when none could be, 2 for a bad invocation (unreadable
dataset, unknown profile, an --out that holds another run), 130 on Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from app.eval.dataset import DatasetError, load_dataset
from app.eval.results import REPORT, RESULTS, SUMMARY, read_results, rewrite_results, write_json

EPILOG = """\
DATASET is the recipe's LLaVA-style JSON (items with id, video or image, and conversations of
human/gpt turns) or JSONL of {id, video, question, options, answer, category?}.
Writes DIR/results.jsonl (one line per item), DIR/summary.json and DIR/report.html.
Compare two runs over the same items: cosmos-serve eval compare RUN_A RUN_B (see --help there).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cosmos-serve eval", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Video-QA accuracy and speed of a deployment, through its OpenAI API.")
    p.add_argument("dataset", metavar="DATASET", help="LLaVA-style .json or .jsonl")
    p.add_argument("--base-url", default="http://localhost:8000/v1",
                   help="the server's OpenAI base URL (default: %(default)s; /v1 is added to a "
                        "bare host)")
    p.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "unused"),
                   help="bearer key (default: $OPENAI_API_KEY)")
    p.add_argument("--model", help="model to ask (default: the first the server lists)")
    p.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="requests in flight (default: %(default)s)")
    p.add_argument("--profile", metavar="NAME|FILE",
                   help="what to ask and how, as the server's profiles: cookbook-sft (the "
                        "recipe's evaluation), cosmos-reason1, or a YAML file; default: send "
                        "only the question and the media, the server's profile applies")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N items")
    p.add_argument("--out", metavar="DIR",
                   help="run directory (default: eval-runs/<dataset>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out: items with an answer are not asked again")
    p.add_argument("--media-dir", metavar="DIR",
                   help="where relative media paths are (the recipe's media_dir; default: the "
                        "dataset's directory)")
    p.add_argument("--media-by-path", action="store_true",
                   help="send file:// paths (the server must be allowed to read them) instead "
                        "of the bytes as data: URLs")
    p.add_argument("--max-tokens", type=int, help="overrides the profile's max_tokens")
    p.add_argument("--temperature", type=float, help="overrides the profile's temperature")
    p.add_argument("--seed", type=int, help="sampling seed sent with every request")
    p.add_argument("--retries", type=int, default=4,
                   help="retries of a transient failure (429, 503, connection reset), with "
                        "backoff (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds per request (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def normalize_base_url(url: str) -> str:
    parsed = urlparse(url)
    return url.rstrip("/") + "/v1" if parsed.path in ("", "/") else url.rstrip("/")


def _fail(message: str, code: int = 2) -> int:
    print(f"cosmos-serve eval: {message}", file=sys.stderr)
    return code


def format_summary(s: dict) -> str:
    from app.eval.report import interval, num, pct

    acc, lat, items = s["accuracy"], s["latency_s"], s["items"]
    lines = [f"accuracy {acc['correct']}/{acc['n']} = {pct(acc['accuracy'])} "
             f"(95% interval {interval(acc)}), unparsable {pct(s['unparsable']['share'])}, "
             f"failed items {items['failed']}"]
    for name, c in s["by_category"].items():
        lines.append(f"  {name}: {c['correct']}/{c['n']} = {pct(c['accuracy'])} "
                     f"({interval(c)})")
    lines.append(f"TTFT p50 {num(lat['ttft'].get('p50'))} s, p90 {num(lat['ttft'].get('p90'))} "
                 f"s; end to end p50 {num(lat['e2e'].get('p50'))} s, p90 "
                 f"{num(lat['e2e'].get('p90'))} s; {num(s['throughput']['items_per_s'])} items/s")
    g = s["guardrail"]
    lines.append(f"guardrail: pass {g['pass']}, flag {g['flag']}, block {g['block']}, "
                 f"none {g['none']}")
    for e in items["errors"][:10]:
        lines.append(f"  failed {e['id']}: {e['error']}")
    if len(items["errors"]) > 10:
        lines.append(f"  ... and {len(items['errors']) - 10} more (summary.json)")
    return "\n".join(lines)


def eval_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from app.eval.dataset import EvalItem
    from app.eval.report import render_report
    from app.eval.runner import RunAborted, RunConfig, load_run, run_items
    from app.eval.summary import summarize

    if args.concurrency < 1:
        return _fail("--concurrency must be at least 1")
    dataset = Path(args.dataset)
    try:
        entries = load_dataset(dataset)
    except DatasetError as exc:
        return _fail(str(exc))
    if args.limit is not None:
        entries = entries[:max(args.limit, 0)]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"eval-runs/{dataset.stem}-{stamp}")
    existing = read_results(out)
    if existing and not args.resume:
        return _fail(f"{out} already holds a run ({len(existing)} items in {RESULTS}): pass "
                     "--resume to continue it, or choose another --out")
    profile_name = profile = None
    if args.profile:
        from app.errors import ConfigError
        from app.profiles import load_profile

        try:
            profile_name, profile = load_profile(args.profile)
        except ConfigError as exc:
            return _fail(str(exc))
    run = load_run(out) if args.resume else {}
    if run.get("dataset") and run["dataset"] != str(dataset.resolve()):
        print(f"cosmos-serve eval: warning: {out} was run on {run['dataset']}", file=sys.stderr)
    base_url = normalize_base_url(args.base_url)
    run.update(dataset=str(dataset.resolve()), base_url=base_url, profile=profile_name,
               concurrency=args.concurrency, media_by_path=args.media_by_path,
               started=run.get("started") or datetime.now(timezone.utc).isoformat(timespec="seconds"))
    cfg = RunConfig(dataset=str(dataset), base_url=base_url, api_key=args.api_key,
                    model=args.model, concurrency=args.concurrency, profile=profile_name,
                    out=out, media_dir=Path(args.media_dir or dataset.parent).resolve(),
                    media_by_path=args.media_by_path, max_tokens=args.max_tokens,
                    temperature=args.temperature, seed=args.seed, retries=args.retries,
                    timeout_s=args.timeout, progress=not args.no_progress)
    done = {i for i, r in existing.items() if r.evaluated}
    todo = [e for e in entries if e.id not in done]
    ids = [e.id for e in entries]
    print(f"{len(entries)} items, {len(entries) - len(todo)} already done, {len(todo)} to ask "
          f"-> {out}", file=sys.stderr)

    aborted, interrupted = None, False
    try:
        asyncio.run(run_items(cfg, todo, run, [existing[i] for i in ids if i in done], profile))
    except RunAborted as exc:
        aborted = str(exc)
    except KeyboardInterrupt:
        interrupted = True
    results = []
    if (out / RESULTS).is_file() and (out / RESULTS).stat().st_size:
        wanted = set(ids)
        results = [r for r in rewrite_results(out, ids) if r.id in wanted]
        summary = summarize(results, run)
        write_json(out / SUMMARY, summary)
        try:
            (out / REPORT).write_text(render_report(summary, results), encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - the results and summary are written already
            print(f"cosmos-serve eval: could not write {out / REPORT}: {exc!r}", file=sys.stderr)
        print(format_summary(summary))
        print(f"wrote {out / RESULTS}, {out / SUMMARY}, {out / REPORT}", file=sys.stderr)
    if aborted:
        print(f"cosmos-serve eval: {aborted}", file=sys.stderr)
    if interrupted:
        print("cosmos-serve eval: interrupted; continue with --resume", file=sys.stderr)
        return 130
    # Failing: this invocation had items to ask and got no answer to any of them, or the run
    # as a whole has none.
    asked = {e.id for e in todo if isinstance(e, EvalItem)}
    answered = {r.id for r in results if r.evaluated}
    if not answered or (asked and not asked & answered):
        return _fail("no item could be evaluated", 1)
    return 0


def compare_main(argv: list[str]) -> int:
    import json

    from app.eval.compare import CompareError, compare_runs, render_html, render_text

    p = argparse.ArgumentParser(
        prog="cosmos-serve eval compare",
        description="Compare two eval runs over the same items (e.g. bf16 vs FP8): accuracy of "
                    "each, the paired difference with McNemar's exact test, the items that "
                    "flipped, latency side by side.")
    p.add_argument("run_a", metavar="RUN_A", help="--out directory of the reference run")
    p.add_argument("run_b", metavar="RUN_B", help="--out directory of the run to check")
    p.add_argument("--out", metavar="DIR", help="also write DIR/compare.json and compare.html")
    args = p.parse_args(argv)
    try:
        result = compare_runs(Path(args.run_a), Path(args.run_b))
    except CompareError as exc:
        return _fail(str(exc))
    print(render_text(result))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        (out / "compare.html").write_text(render_html(result), encoding="utf-8")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return compare_main(argv[1:])
    return eval_main(argv)


if __name__ == "__main__":
    sys.exit(main())
