"""The statistics of a run and of two runs side by side.

Accuracy carries a Wilson 95% interval: it stays inside [0, 1] and keeps its coverage at the few
dozen items a team's held-out set often has, where the normal approximation does not. Two runs
over the same items are compared pairwise: McNemar's exact test on the items that flipped (the
items both got right or both got wrong say nothing about a difference), and a paired bootstrap
interval for the difference in accuracy.
"""
from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054
PERCENTILES = (50, 90, 95, 99)


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None without items."""
    if n == 0:
        return None
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy(correct: int, n: int) -> dict:
    interval = wilson(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None,
            "ci95": list(interval) if interval else None, "ci_method": "wilson"}


def percentiles(values: list[float]) -> dict:
    """p50/p90/p95/p99, mean and count of the values that are not None."""
    xs = np.array([v for v in values if v is not None], dtype=float)
    if xs.size == 0:
        return {"n": 0}
    out = {f"p{q}": float(np.percentile(xs, q)) for q in PERCENTILES}
    return {"n": int(xs.size), "mean": float(xs.mean()), "min": float(xs.min()),
            "max": float(xs.max()), **out}


def token_stats(values: list[int | None]) -> dict:
    xs = [v for v in values if v is not None]
    return {"n": len(xs), "total": sum(xs), "mean": sum(xs) / len(xs) if xs else None}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (a binomial test at 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired_bootstrap(a: list[bool], b: list[bool], rounds: int = 10_000,
                     seed: int = 0) -> tuple[float, float] | None:
    """95% percentile interval of accuracy(b) - accuracy(a), resampling items together."""
    if not a:
        return None
    diff = np.array(b, dtype=float) - np.array(a, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(diff), size=(rounds, len(diff)))
    means = diff[idx].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def confusion(pairs: list[tuple[str, str | None]], letters: list[str]) -> dict:
    """Counts of (expected, predicted); an unparsable answer is the column "none"."""
    cols = letters + ["none"]
    matrix = [[0] * len(cols) for _ in letters]
    for expected, got in pairs:
        if expected in letters:
            matrix[letters.index(expected)][cols.index(got if got in letters else "none")] += 1
    return {"rows": letters, "cols": cols, "matrix": matrix}
