"""Pieces of tests/bench/gpu.py: clip variants, the client and its phases, the servers, results.

Shared facts of the benchmark live here so that every module agrees on them.
"""
from __future__ import annotations

import time

NAME = "q"  # served model name in both servers
COSMOS_TOTAL_PIXELS = 6_422_528
N_FRAMES = 40  # 10 s at 4 fps
# qwen-vl-utils' per-frame cap for a 40-frame clip at Cosmos' default total budget:
# max(min(768*28*28, total/40*2), int(128*28*28*1.05))
DEFAULT_FRAME_CAP = int(max(min(768 * 28 * 28, COSMOS_TOTAL_PIXELS / N_FRAMES * 2),
                            int(128 * 28 * 28 * 1.05)))
BUDGET = 81_920
# Variant indices: timed single requests, the concurrent burst, warm-up (never reused across phases).
V_SINGLE_81920 = range(0, 5)
V_SINGLE_DEFAULT = range(5, 10)
V_CONC = range(10, 42)
V_WARM = range(42, 48)
N_VARIANTS = 48

T0 = time.time()


def log(*a: object) -> None:
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)
