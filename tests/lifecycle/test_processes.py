"""The process clean-up on real processes, without vLLM: a stand-in server that starts what vLLM
starts (a child that ignores SIGTERM, as vLLM's engine core does while it loads, and a grandchild
started by spawn-like fork+exec), then is stopped gracefully or killed outright."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from app.lifecycle import processes

REPO = Path(__file__).resolve().parents[2]

# The stand-in server: subreaper + watchdog as `cosmos-serve serve` sets them up, then a child
# ("engine core", deaf to SIGTERM) with a grandchild ("worker"); prints the pids and waits.
SERVER = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    from app.lifecycle import processes
    from app.lifecycle.server import _WATCHDOG
    processes.become_subreaper()
    dog = subprocess.Popen([sys.executable, "-I", str(_WATCHDOG), str(os.getpid())],
                           start_new_session=True)
    core = subprocess.Popen([sys.executable, "-c", '''
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    w = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(w.pid, flush=True)
    time.sleep(600)
    '''], stdout=subprocess.PIPE, text=True)
    worker = int(core.stdout.readline())
    print(dog.pid, core.pid, worker, flush=True)
    if sys.argv[1] == "graceful":
        sys.stdin.readline()
        left = processes.stop_descendants(os.getpid(), 10, exclude={dog.pid}, term_wait_s=1)
        print("left", len(left), flush=True)
    time.sleep(600)
""")


def _start(mode: str):
    proc = subprocess.Popen([sys.executable, "-c", SERVER, mode], cwd=REPO, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    dog, core, worker = map(int, proc.stdout.readline().split())
    time.sleep(1.5)  # the watchdog's first looks (it records twice a second)
    return proc, dog, core, worker


def _gone(pids, timeout_s: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p in pids if (pr := processes.read_proc(p)) and pr.state != "Z"]
        if not left:
            return []
        time.sleep(0.1)
    return left


def test_sigkill_of_the_server_kills_what_it_started():
    proc, dog, core, worker = _start("kill")
    try:
        assert {p.pid for p in processes.descendants(proc.pid)} >= {dog, core, worker}
        proc.kill()  # as the OOM killer would: no handler runs
        proc.wait()
        assert _gone([core, worker]) == []
        assert _gone([dog]) == []  # and the watchdog itself ends
    finally:
        for pid in (core, worker, dog):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# A stand-in server whose "engine core" starts its "worker" only once the server is gone: the
# worker is never among the server's descendants, so only the watchdog's final sweep finds it.
LATE_SERVER = textwrap.dedent("""
    import os, subprocess, sys, time
    from app.lifecycle import processes
    from app.lifecycle.server import _WATCHDOG
    processes.become_subreaper()
    dog = subprocess.Popen([sys.executable, "-I", str(_WATCHDOG), str(os.getpid())],
                           start_new_session=True)
    core = subprocess.Popen([sys.executable, "-c", '''
    import os, subprocess, sys, time
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.001)
    w = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(sys.argv[1], "w").write(str(w.pid))
    time.sleep(600)
    ''', sys.argv[1]])
    print(dog.pid, core.pid, flush=True)
    time.sleep(600)
""")


def test_a_worker_started_as_the_server_dies_is_killed_too(tmp_path):
    out = tmp_path / "worker.pid"
    proc = subprocess.Popen([sys.executable, "-c", LATE_SERVER, str(out)], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    dog, core = map(int, proc.stdout.readline().split())
    time.sleep(1.5)  # the watchdog has recorded the core
    proc.kill()
    proc.wait()
    assert _gone([core]) == []
    # The core forks within milliseconds of the server's death, the watchdog looks every half
    # second: the worker nearly always exists (if the watchdog froze the core first, it never will).
    worker = int(out.read_text()) if out.exists() and out.read_text() else None
    try:
        assert _gone([worker] if worker else []) == []
        assert _gone([dog]) == []
    finally:
        for pid in (core, worker, dog):
            try:
                os.kill(pid, signal.SIGKILL) if pid else None
            except OSError:
                pass


def test_graceful_stop_kills_a_child_deaf_to_sigterm_and_its_orphan():
    proc, dog, core, worker = _start("graceful")
    try:
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().split() == ["left", "0"]  # within its 10 s
        assert _gone([core, worker], timeout_s=0.5) == []
        assert processes.read_proc(dog) is not None  # the watchdog is not the server's to stop
    finally:
        proc.kill()
        proc.wait()
        for pid in (core, worker, dog):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert _gone([dog]) == []


def test_descendants_of_a_process_tree():
    me = os.getpid()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        found = processes.descendants(me)
        assert child.pid in {p.pid for p in found}
        p = next(p for p in found if p.pid == child.pid)
        assert p.ppid == me and processes.alive(p)
    finally:
        child.kill()
        child.wait()
    assert not processes.alive(p)


def test_pool_threads_carry_their_python_name_in_the_process_table():
    from concurrent.futures import ThreadPoolExecutor

    def comm() -> str:
        import threading

        return Path(f"/proc/self/task/{threading.get_native_id()}/comm").read_text().strip()

    with ThreadPoolExecutor(2, thread_name_prefix="cosmos-decode",
                            initializer=processes.name_os_thread) as pool:
        names = {pool.submit(comm).result() for _ in range(4)}
    with ThreadPoolExecutor(1, thread_name_prefix="cosmos-decode") as pool:
        unnamed = pool.submit(comm).result()
    assert names <= {"cosmos-decode_0", "cosmos-decode_1"} and names
    assert unnamed != "cosmos-decode_0"  # without the initializer the kernel's name is kept
