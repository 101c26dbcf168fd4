"""CPU seconds by process and thread group, sampled from /proc while a benchmark runs beside it.

The burst's decode was ~40% slower inside the server than alone (decode-bench): this says where
the host's cores went meanwhile (our event loop, decode and NVDEC-feeding threads, vLLM's
processing thread, its engine core, the benchmark's own client processes) and whether the
16 cores or one thread (the event loop, under the GIL) were the limit.

    python3 -m tests.bench.gpu_bench.threads --out $OUT/threads.jsonl --seconds 600 &
    python3 -m tests.bench.gpu_bench.threads --window START END < $OUT/threads.jsonl

Each line: {"t": epoch s, "busy": host busy jiffies, "total": host jiffies, "procs": {pid:
{"cmd": short command, "groups": {thread name without its number: utime+stime jiffies}}}}; the
main thread (our event loop) is "main", our pools' threads carry their names (cosmos-decode,
cosmos-gop, cosmos-mm, cosmos-sha256), other Python threads are "python".
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

_NUMBERED = re.compile(r"[_\-:]?\d+$")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _jiffies(stat: str) -> int:
    # fields after the ")" that closes the command name: utime is the 12th, stime the 13th
    rest = stat.rsplit(")", 1)[-1].split()
    return int(rest[11]) + int(rest[12]) if len(rest) > 12 else 0


def sample() -> dict:
    cpu = _read("/proc/stat").split("\n", 1)[0].split()[1:]
    vals = [int(v) for v in cpu]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        cmd = _read(f"/proc/{pid}/cmdline").split("\0")
        if not cmd or "python" not in os.path.basename(cmd[0]) and "vllm" not in cmd[0]:
            continue
        groups: dict[str, int] = {}
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            name = "main" if tid == pid else \
                _NUMBERED.sub("", _read(f"/proc/{pid}/task/{tid}/comm").strip())
            groups[name] = groups.get(name, 0) + _jiffies(_read(f"/proc/{pid}/task/{tid}/stat"))
        procs[pid] = {"cmd": " ".join(c for c in cmd[1:4] if c)[:80], "groups": groups}
    return {"t": round(time.time(), 3), "busy": sum(vals) - idle, "total": sum(vals),
            "procs": procs}


def window(lines: list[dict], start: float, end: float) -> dict:
    """Cores used between two epoch times, by process command and thread group."""
    a = min(lines, key=lambda x: abs(x["t"] - start))
    b = min(lines, key=lambda x: abs(x["t"] - end))
    span = max(b["t"] - a["t"], 1e-9)
    hz = os.sysconf("SC_CLK_TCK")
    ncpu = os.cpu_count() or 1
    out = {"seconds": round(span, 2),
           "host_cores_busy": round((b["busy"] - a["busy"]) / max(b["total"] - a["total"], 1)
                                    * ncpu, 2), "procs": {}}
    for pid, p in b["procs"].items():
        before = a["procs"].get(pid, {"groups": {}})["groups"]
        used = {g: round((j - before.get(g, 0)) / hz / span, 2) for g, j in p["groups"].items()}
        used = {g: c for g, c in sorted(used.items(), key=lambda kv: -kv[1]) if c >= 0.05}
        if used:
            out["procs"][f"{pid} {p['cmd']}"] = used
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--window", nargs=2, type=float, metavar=("START", "END"))
    a = ap.parse_args()
    if a.window:
        lines = [json.loads(ln) for ln in sys.stdin if ln.strip()]
        print(json.dumps(window(lines, *a.window), indent=1))
        return 0
    stop = time.time() + a.seconds
    with open(a.out, "w") as f:
        while time.time() < stop:
            f.write(json.dumps(sample(), separators=(",", ":")) + "\n")
            f.flush()
            time.sleep(a.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
