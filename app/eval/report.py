"""report.html: one self-contained page (inline CSS, plots as base64 PNG, no script, no network).

Plots are matplotlib on the Agg backend: per-category accuracy with its 95% interval, the
confusion matrix of letters (expected x answered, "none" for unparsable), and the TTFT and
end-to-end latency histograms.
"""
from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from app.eval.results import Result  # noqa: E402

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#1b1f24;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37}.bad{color:#cf222e}.muted{color:#57606a}
figure{margin:1rem 0}img{max-width:100%;height:auto}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.grid figure{flex:1 1 480px}
"""


def esc(value) -> str:
    return html.escape("" if value is None else str(value))


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def interval(acc: dict) -> str:
    ci = acc.get("ci95")
    return "–" if not ci else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def figure_tag(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"></figure>'


def table(headers: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def category_plot(summary: dict) -> str:
    cats = summary["by_category"]
    names = ["overall"] + list(cats)
    accs = [summary["accuracy"]] + list(cats.values())
    values = [a["accuracy"] or 0.0 for a in accs]
    # Clamped: at 0% or 100% the interval's edge is the value, give or take a rounding error.
    lo = [max(0.0, v - (a["ci95"] or [v, v])[0]) for v, a in zip(values, accs)]
    hi = [max(0.0, (a["ci95"] or [v, v])[1] - v) for v, a in zip(values, accs)]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(names)), 3.6))
    colors = ["#0969da"] + ["#54aeff"] * len(cats)
    ax.bar(names, values, yerr=[lo, hi], capsize=4, color=colors)
    for i, a in enumerate(accs):
        ax.text(i, 0.02, f"n={a['n']}", ha="center", va="bottom", fontsize=8, color="white")
    letters = summary["confusion"]["rows"]
    if letters:
        ax.axhline(1 / len(letters), color="#cf222e", ls="--", lw=1, label="chance")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% Wilson interval)")
    ax.set_title("Accuracy by category")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    return figure_tag(fig, "accuracy by category")


def confusion_plot(summary: dict) -> str:
    c = summary["confusion"]
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(c["cols"]), 1 + 0.6 * max(len(c["rows"]), 1)))
    matrix = c["matrix"] or [[0] * len(c["cols"])]
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > max(map(max, matrix)) / 2 else "black")
    ax.set_xticks(range(len(c["cols"])), c["cols"])
    ax.set_yticks(range(max(len(c["rows"]), 1)), c["rows"] or [""])
    ax.set_xlabel("answered")
    ax.set_ylabel("expected")
    ax.set_title("Confusion matrix of letters")
    return figure_tag(fig, "confusion matrix")


def latency_plot(results: list[Result]) -> str:
    ttft = [r.ttft_s for r in results if r.evaluated and r.ttft_s is not None]
    e2e = [r.latency_s for r in results if r.evaluated and r.latency_s is not None]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    both = ttft + e2e
    bins = 20 if both and max(both) > min(both) else 5
    if ttft:
        ax.hist(ttft, bins=bins, alpha=0.7, label=f"time to first token (n={len(ttft)})",
                color="#54aeff")
    if e2e:
        ax.hist(e2e, bins=bins, alpha=0.7, label=f"end to end (n={len(e2e)})", color="#0550ae")
    ax.set_xlabel("seconds")
    ax.set_ylabel("items")
    ax.set_title("Latency")
    if both:
        ax.legend(fontsize=8)
    return figure_tag(fig, "latency histogram")


def _latency_rows(lat: dict) -> list[list[str]]:
    rows = []
    for name, key in (("time to first token", "ttft"), ("end to end", "e2e")):
        s = lat[key]
        rows.append([name] + [num(s.get(k)) for k in ("p50", "p90", "p95", "p99", "mean", "max")])
    return rows


def render_report(summary: dict, results: list[Result]) -> str:
    run, items, acc = summary["run"], summary["items"], summary["accuracy"]
    thr, tok = summary["throughput"], summary["tokens"]
    head = table(["run", ""], [
        ["dataset", esc(run.get("dataset"))], ["server", esc(run.get("base_url"))],
        ["model", esc(run.get("model"))], ["profile", esc(run.get("profile") or "(server's)")],
        ["started", esc(run.get("started"))], ["concurrency", esc(run.get("concurrency"))]])
    headline = table(
        ["accuracy", "95% interval", "correct / evaluated", "failed items", "unparsable",
         "items/s", "output tokens/s"],
        [[f"<b>{pct(acc['accuracy'])}</b>", interval(acc), f"{acc['correct']} / {acc['n']}",
          str(items["failed"]), pct(summary["unparsable"]["share"]), num(thr["items_per_s"]),
          num(thr["output_tokens_per_s"], 1)]], numeric={0, 2, 3, 4, 5, 6})
    cats = table(["category", "accuracy", "95% interval", "correct", "n"],
                 [[esc(k), pct(v["accuracy"]), interval(v), str(v["correct"]), str(v["n"])]
                  for k, v in summary["by_category"].items()], numeric={1, 3, 4})
    g = summary["guardrail"]
    guard = table(["pass", "flag", "block", "no verdict"],
                  [[str(g["pass"]), str(g["flag"]), str(g["block"]), str(g["none"])]],
                  numeric={0, 1, 2, 3})
    lat = table(["seconds", "p50", "p90", "p95", "p99", "mean", "max"],
                _latency_rows(summary["latency_s"]), numeric={1, 2, 3, 4, 5, 6})
    tokens = table(["tokens", "total", "mean per item", "items reporting"],
                   [[k, f"{v['total']:,}", num(v["mean"], 1), str(v["n"])] for k, v in tok.items()],
                   numeric={1, 2, 3})
    errors = (table(["item", "error"], [[esc(e["id"]), esc(e["error"])] for e in items["errors"]])
              if items["errors"] else '<p class="muted">none</p>')
    rows = []
    for r in results:
        mark = ("–" if r.correct is None else
                '<span class="ok">✓</span>' if r.correct else '<span class="bad">✗</span>')
        rows.append([esc(r.id), esc(r.category), esc(r.expected), esc(r.letter or "–"), mark,
                     esc(r.guardrail or "–"), num(r.ttft_s), num(r.latency_s),
                     esc((r.answer or r.error or "")[:160])])
    per_item = table(["item", "category", "expected", "answered", "", "guardrail", "TTFT s",
                      "e2e s", "answer / error"], rows, numeric={6, 7})
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cosmos-serve eval: {esc(run.get('model'))} on {esc(run.get('dataset'))}</title>
<style>{CSS}</style></head><body>
<h1>Evaluation of {esc(run.get('model'))}</h1>
{head}
<h2>Accuracy</h2>
{headline}
<div class="grid">{category_plot(summary)}{confusion_plot(summary)}</div>
{cats}
<h2>Speed</h2>
{latency_plot(results)}
{lat}
{tokens}
<h2>Guardrail verdicts</h2>
{guard}
<h2>Failed items</h2>
{errors}
<h2>Items</h2>
{per_item}
</body></html>
"""
