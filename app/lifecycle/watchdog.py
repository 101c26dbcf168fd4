"""The watchdog: a tiny process that kills the server's processes when the server itself dies.

A SIGKILL (or the OOM killer) gives the server no chance to stop vLLM's engine core and workers;
re-parented to init they would keep their memory (and a GPU's) indefinitely. The watchdog is
started by the server in its own session (terminal signals and group kills aimed at the server
do not reach it), records the server's descendants twice a second, and when the server is gone
SIGKILLs every recorded process still alive with the same start time, what those started after
the last look (they are frozen first, so the sweep catches up with them: an engine core may spawn
its worker in the half second before the server dies), plus the members of the server's process
group when the server led one. multiprocessing's resource tracker is left to exit by itself, after
it has unlinked what the killed ones leaked.

Run as `python -I app/lifecycle/watchdog.py SERVER_PID`: stdlib only, starts in milliseconds.
"""
from __future__ import annotations

import os
import signal
import sys
import time

if __package__ in (None, ""):  # run by path in an isolated interpreter
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import processes  # type: ignore[import-not-found]
else:
    from app.lifecycle import processes

POLL_S = 0.5
FREEZE_WAIT_S = 1.0  # a SIGSTOP lands at the target's next kernel entry: microseconds, not this


def _frozen(procs: list[processes.Proc]) -> None:
    processes.signal_all(procs, signal.SIGSTOP)
    deadline = time.monotonic() + FREEZE_WAIT_S
    while time.monotonic() < deadline:
        states = [processes.read_proc(p.pid) for p in procs if processes.alive(p)]
        if all(s is None or s.state in ("T", "t", "Z", "X") for s in states):
            return
        time.sleep(0.005)


def sweep(known: list[processes.Proc], me: int) -> list[processes.Proc]:
    """`known` and everything they started since they were recorded, frozen (SIGSTOP) so that
    none can start another before the SIGKILL."""
    left = {(p.pid, p.start): p for p in known if processes.alive(p)}
    while True:
        _frozen(list(left.values()))
        table = processes.process_table()
        new = {(d.pid, d.start): d for p in left.values() for d in processes.descendants(p.pid, table)
               if d.pid != me and not processes.is_resource_tracker(d)}
        new = {k: d for k, d in new.items() if k not in left}
        if not new:
            return list(left.values())
        left.update(new)


def watch(server: int) -> int:
    me = os.getpid()
    first = processes.read_proc(server)
    if first is None:
        return 0
    led_group = first.pgid == server
    known: dict[tuple[int, int], processes.Proc] = {}
    while True:
        now = processes.read_proc(server)
        if now is None or now.start != first.start or now.state in ("Z", "X"):
            break
        for p in processes.descendants(server):
            if p.pid != me and not processes.is_resource_tracker(p):
                known[(p.pid, p.start)] = p
        # Forget what has exited, so a long-lived server does not grow this without bound.
        known = {k: p for k, p in known.items() if processes.alive(p)}
        time.sleep(POLL_S)
    left = sweep(list(known.values()), me)
    if led_group:  # what started after the last look
        left += [p for p in processes.process_table().values()
                 if p.pgid == server and p.pid != me and not processes.is_resource_tracker(p)
                 and (p.pid, p.start) not in known]
    processes.signal_all(left, signal.SIGKILL)
    if left:
        names = ", ".join(f"{p.name}[{p.pid}]" for p in left)
        print(f"cosmos-serve watchdog: server {server} died; killed {names}", file=sys.stderr,
              flush=True)
    return 0


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    return watch(int(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
