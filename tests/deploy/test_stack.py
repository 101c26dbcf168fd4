"""deploy/stack.sh, run for real: one command brings up cosmos-serve and a Prometheus that
scrapes it with the shipped config and rules; SIGTERM (Ctrl-C's sibling) stops both. The server
here is the fake engine (`--engine fake`) so the test takes seconds; test_prometheus.py runs the
same script's Prometheus against the real engine.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import httpx
import pytest

from tests.conftest import free_port
from tests.deploy.conftest import REPO


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stack_starts_scrapes_alerts_and_stops(prometheus_bin, tmp_path):
    port, prom_port = free_port(), free_port()
    env = {**os.environ, "COSMOS_STACK_PORT": str(port), "PROMETHEUS_PORT": str(prom_port),
           "PROMETHEUS_SCRAPE_INTERVAL": "1s", "COSMOS_STACK_DIR": str(tmp_path)}
    proc = subprocess.Popen(["bash", "deploy/stack.sh", "--engine", "fake", "--model", "fake-model"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    url = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        deadline = time.monotonic() + 120
        ready = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"{url}/query", params={"query": 'cosmos_engine_ready{job="cosmos-serve"}'})
                result = r.json()["data"]["result"]
                if result and result[0]["value"][1] == "1":
                    ready = result[0]["metric"]
                    break
            except (httpx.TransportError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        assert ready, f"Prometheus never saw a ready server:\n{(tmp_path / 'server.log').read_text()[-2000:] if (tmp_path / 'server.log').exists() else ''}"
        assert ready["instance"] == f"127.0.0.1:{port}"
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200
        groups = httpx.get(f"{url}/rules").json()["data"]["groups"]
        assert [g["name"] for g in groups] == ["cosmos-serve"]
        assert groups[0]["file"] == str(REPO / "deploy" / "prometheus" / "alerts.yml")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert "[stack] stopped" in out, out
    assert not listening(port) and not listening(prom_port), "stack.sh left a process behind"


def test_stack_stops_when_the_server_dies(prometheus_bin, tmp_path):
    # A server that cannot start ends the stack, with its status, instead of leaving Prometheus
    # scraping nothing.
    prom_port = free_port()
    env = {**os.environ, "COSMOS_STACK_PORT": str(free_port()), "PROMETHEUS_PORT": str(prom_port),
           "COSMOS_STACK_DIR": str(tmp_path)}
    proc = subprocess.Popen(["bash", "deploy/stack.sh", "--engine", "nonsense", "--model", "m"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 2, (out, err)  # cosmos-serve's status for invalid settings
    assert "a process ended (status 2)" in err and "[stack] stopped" in out
    assert "Input should be 'vllm' or 'fake'" in (tmp_path / "server.log").read_text()
    assert not listening(prom_port), "stack.sh left Prometheus behind"
