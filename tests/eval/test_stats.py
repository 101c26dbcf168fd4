"""Accuracy intervals, percentiles and the paired tests against values worked out by hand."""
from __future__ import annotations

import math

import pytest

from app.eval import stats


def test_wilson_known_values():
    # Wilson 95% for 0/10 is [0, 0.2775] and for 10/10 [0.7225, 1]: the interval is not
    # degenerate at the edges, which is why it is used.
    lo, hi = stats.wilson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.27753, abs=1e-4)
    lo, hi = stats.wilson(10, 10)
    assert lo == pytest.approx(0.72247, abs=1e-4) and hi == pytest.approx(1)
    lo, hi = stats.wilson(5, 14)
    assert lo < 5 / 14 < hi
    assert (lo, hi) == pytest.approx((0.16336, 0.61237), abs=1e-4)
    assert stats.wilson(0, 0) is None


def test_accuracy_record():
    a = stats.accuracy(7, 14)
    assert a["accuracy"] == 0.5 and a["n"] == 14 and a["correct"] == 7
    assert a["ci95"][0] < 0.5 < a["ci95"][1]


def test_mcnemar_exact():
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)       # all six flips one way
    assert stats.mcnemar_exact(3, 3) == 1.0
    assert stats.mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)
    assert stats.mcnemar_exact(9, 1) == stats.mcnemar_exact(1, 9)


def test_paired_bootstrap_brackets_the_difference():
    a = [True] * 30 + [False] * 10
    b = [True] * 20 + [False] * 20
    lo, hi = stats.paired_bootstrap(a, b)
    assert lo < -0.25 < hi < 0
    assert stats.paired_bootstrap([True, False], [True, False]) == (0.0, 0.0)


def test_percentiles_skip_missing():
    p = stats.percentiles([1.0, None, 2.0, 3.0, 4.0])
    assert p["n"] == 4 and p["p50"] == 2.5 and p["max"] == 4.0 and p["mean"] == 2.5
    assert stats.percentiles([None]) == {"n": 0}


def test_confusion_counts_unparsable_as_none():
    c = stats.confusion([("A", "A"), ("A", None), ("B", "A"), ("B", "B")], ["A", "B"])
    assert c["cols"] == ["A", "B", "none"]
    assert c["matrix"] == [[1, 0, 1], [1, 1, 0]]
    assert sum(map(sum, c["matrix"])) == 4 and not math.isnan(c["matrix"][0][0])
