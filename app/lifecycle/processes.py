"""The processes this server started, found and stopped by the process table, not by handles.

vLLM starts its engine core and workers with multiprocessing's spawn method (always on the CPU
build), so no hook of ours runs in them and we hold no handle for the workers the engine core
starts. What we can rely on is the kernel's process table: every descendant of the server is
found in /proc by its parent chain, and the server is made a child subreaper so that a worker
whose engine core died is re-parented to the server (still a descendant) instead of to init.

Stdlib only: app/lifecycle/watchdog.py imports this module in a bare interpreter.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NAME = 15


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    start: int  # clock ticks after boot: a reused pid has another start time
    state: str
    name: str


def read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    # The name is in parentheses and may itself contain spaces and parentheses.
    head, _, tail = raw.rpartition(")")
    fields = tail.split()
    return Proc(pid=pid, ppid=int(fields[1]), pgid=int(fields[2]), start=int(fields[19]),
                state=fields[0], name=head.partition("(")[2])


def process_table() -> dict[int, Proc]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            p = read_proc(int(entry))
            if p is not None:
                table[p.pid] = p
    return table


def descendants(root: int, table: dict[int, Proc] | None = None) -> list[Proc]:
    """Every live (not zombie) process below `root`, parents before children."""
    table = process_table() if table is None else table
    children: dict[int, list[Proc]] = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p)
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child.pid != root:
                out.append(child)
                todo.append(child.pid)
    return [p for p in out if p.state != "Z"]


def is_resource_tracker(p: Proc) -> bool:
    """multiprocessing's resource tracker ignores SIGTERM and exits by itself once every process
    sharing it is gone, after unlinking what they leaked (shared memory, semaphores): killing it
    would only leave that behind."""
    try:
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            return b"multiprocessing.resource_tracker" in f.read()
    except OSError:
        return False


def alive(p: Proc) -> bool:
    now = read_proc(p.pid)
    return now is not None and now.start == p.start and now.state != "Z"


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process (Linux >= 3.4)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def name_os_thread() -> None:
    """Give the calling thread its Python name in the process table too (15 bytes), so that
    `top -H`, `ps -L` and /proc tell the decode, NVDEC, hashing and processing pools apart.
    A pool's `initializer`."""
    import threading

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, threading.current_thread().name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def signal_all(procs: list[Proc], sig: int) -> None:
    for p in procs:
        if alive(p):
            try:
                os.kill(p.pid, sig)
            except OSError:
                pass


def reap(pids: set[int]) -> None:
    """Collect exited children among `pids` (re-parented orphans are ours to wait for)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def stop_descendants(root: int, timeout_s: float, exclude: set[int] = frozenset(),
                     term_wait_s: float = 3.0) -> list[Proc]:
    """SIGTERM every descendant of `root`, SIGKILL what is left after `term_wait_s` (within
    `timeout_s` in all); returns the processes still alive at the end (normally none).

    vLLM's engine core only records a SIGTERM while it is being constructed (loading weights
    can take minutes), so the SIGKILL step is what bounds the time."""
    deadline = time.monotonic() + timeout_s
    seen: dict[tuple[int, int], Proc] = {}

    def scan() -> list[Proc]:
        found = [p for p in descendants(root)
                 if p.pid not in exclude and not is_resource_tracker(p)]
        for p in found:
            seen[(p.pid, p.start)] = p
        return found

    signal_all(scan(), signal.SIGTERM)
    soft = min(deadline, time.monotonic() + term_wait_s)
    while time.monotonic() < soft and any(alive(p) for p in scan()):
        time.sleep(0.1)
    # Kill until nothing is left: a process may start a child while its parent is killed.
    while time.monotonic() < deadline:
        left = [p for p in scan() if alive(p)]
        if not left:
            break
        signal_all(left, signal.SIGKILL)
        time.sleep(0.05)
        reap({p.pid for p in left})
    return [p for p in seen.values() if alive(p)]
