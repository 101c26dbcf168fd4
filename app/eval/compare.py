"""`cosmos-serve eval compare RUN_A RUN_B`: did B (FP8, a new fine-tune) regress against A?

Only items both runs evaluated are compared, pairwise: the accuracy of each, the difference
B - A with a paired bootstrap 95% interval, McNemar's exact test on the items that flipped, the
flipped items themselves, and latency side by side.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from app.eval import stats  # noqa: E402
from app.eval.report import CSS, esc, figure_tag, interval, num, pct, table  # noqa: E402
from app.eval.results import RESULTS, SUMMARY, read_json, read_results  # noqa: E402


class CompareError(Exception):
    pass


def _load(run: Path) -> tuple[dict, dict]:
    if not (run / RESULTS).is_file():
        raise CompareError(f"{run} is not an eval run directory (no {RESULTS})")
    return read_results(run), read_json(run / SUMMARY)


def compare_runs(run_a: Path, run_b: Path) -> dict:
    res_a, sum_a = _load(run_a)
    res_b, sum_b = _load(run_b)
    common = [i for i in res_a if i in res_b and res_a[i].evaluated and res_b[i].evaluated]
    if not common:
        raise CompareError(f"{run_a} and {run_b} have no evaluated item in common")
    mismatched = [i for i in common if res_a[i].expected != res_b[i].expected]
    if mismatched:
        raise CompareError(f"the runs disagree on the expected answer of {len(mismatched)} "
                           f"items (e.g. {mismatched[0]}): not the same dataset")
    a = [bool(res_a[i].correct) for i in common]
    b = [bool(res_b[i].correct) for i in common]
    lost = [i for i, x, y in zip(common, a, b) if x and not y]      # A right, B wrong
    gained = [i for i, x, y in zip(common, a, b) if y and not x]    # A wrong, B right
    flipped = [{"id": i, "expected": res_a[i].expected, "letter_a": res_a[i].letter,
                "letter_b": res_b[i].letter, "change": "lost" if i in lost else "gained"}
               for i in common if i in lost or i in gained]

    def side(res: dict, summary: dict, path: Path) -> dict:
        rs = [res[i] for i in common]
        return {"run": str(path), "model": summary.get("run", {}).get("model"),
                "profile": summary.get("run", {}).get("profile"),
                "accuracy": stats.accuracy(sum(bool(r.correct) for r in rs), len(rs)),
                "ttft_s": stats.percentiles([r.ttft_s for r in rs]),
                "latency_s": stats.percentiles([r.latency_s for r in rs]),
                "items_per_s": summary.get("throughput", {}).get("items_per_s")}

    diff = (sum(b) - sum(a)) / len(common)
    return {"items": {"common": len(common), "only_a": len(set(res_a) - set(res_b)),
                      "only_b": len(set(res_b) - set(res_a))},
            "a": side(res_a, sum_a, run_a), "b": side(res_b, sum_b, run_b),
            "difference": {"accuracy_b_minus_a": diff,
                           "ci95": stats.paired_bootstrap(a, b), "ci_method": "paired bootstrap",
                           "lost": len(lost), "gained": len(gained),
                           "mcnemar_p": stats.mcnemar_exact(len(lost), len(gained))},
            "flipped": flipped}


def render_text(c: dict) -> str:
    d, a, b = c["difference"], c["a"], c["b"]
    ci = d["ci95"]
    lines = [f"items compared: {c['items']['common']} (only in A: {c['items']['only_a']}, "
             f"only in B: {c['items']['only_b']})",
             f"{'':4}{'accuracy':>10} {'95% interval':>14} {'TTFT p50':>9} {'e2e p50':>8} "
             f"{'e2e p90':>8} {'items/s':>8}  run"]
    for name, s in (("A", a), ("B", b)):
        lines.append(f"{name:4}{pct(s['accuracy']['accuracy']):>10} "
                     f"{interval(s['accuracy']):>14} {num(s['ttft_s'].get('p50')):>9} "
                     f"{num(s['latency_s'].get('p50')):>8} {num(s['latency_s'].get('p90')):>8} "
                     f"{num(s['items_per_s']):>8}  {s['run']}")
    lines.append(f"B - A: {100 * d['accuracy_b_minus_a']:+.1f} points "
                 f"(95% interval {100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}); "
                 f"flipped: {d['lost']} lost, {d['gained']} gained; "
                 f"McNemar exact p = {d['mcnemar_p']:.3g}")
    for f in c["flipped"]:
        lines.append(f"  {f['change']:6} {f['id']}: expected {f['expected']}, "
                     f"A {f['letter_a'] or '-'}, B {f['letter_b'] or '-'}")
    return "\n".join(lines)


def render_html(c: dict) -> str:
    d, a, b = c["difference"], c["a"], c["b"]
    rows = [[name, esc(s["run"]), esc(s["model"]), pct(s["accuracy"]["accuracy"]),
             interval(s["accuracy"]), num(s["ttft_s"].get("p50")), num(s["latency_s"].get("p50")),
             num(s["latency_s"].get("p90")), num(s["items_per_s"])] for name, s in (("A", a),
                                                                                  ("B", b))]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    keys = ["p50", "p90", "p95", "p99"]
    for off, (name, s) in zip((-0.2, 0.2), (("A", a), ("B", b))):
        ax.bar([i + off for i in range(len(keys))], [s["latency_s"].get(k, 0) for k in keys],
               width=0.4, label=f"{name}: {s['model']}")
    ax.set_xticks(range(len(keys)), [f"e2e {k}" for k in keys])
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    ax.set_title("End-to-end latency")
    ci = d["ci95"]
    flips = table(["item", "expected", "A", "B", "change"],
                  [[esc(f["id"]), esc(f["expected"]), esc(f["letter_a"] or "–"),
                    esc(f["letter_b"] or "–"), esc(f["change"])] for f in c["flipped"]])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cosmos-serve eval compare</title>
<style>{CSS}</style></head><body>
<h1>A vs B over {c['items']['common']} items</h1>
{table(["", "run", "model", "accuracy", "95% interval", "TTFT p50 s", "e2e p50 s", "e2e p90 s",
        "items/s"], rows, numeric={3, 5, 6, 7, 8})}
<p>B − A: <b>{100 * d['accuracy_b_minus_a']:+.1f} points</b> (95% paired bootstrap interval
{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f}); {d['lost']} lost, {d['gained']} gained;
McNemar exact p = {d['mcnemar_p']:.3g}.</p>
{figure_tag(fig, "latency side by side")}
<h2>Flipped items</h2>
{flips if c['flipped'] else '<p class="muted">none</p>'}
</body></html>
"""
