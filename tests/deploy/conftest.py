"""Tools the deploy tests run for real: Debian's prometheus package (prometheus and promtool).

deploy/test.sh installs it when missing; run outside that script, the fixture installs it the same
way (as root, with apt-get) and skips, saying why, only where it cannot.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "cosmos-serve.json"


def _install_prometheus() -> str | None:
    """Why Debian's prometheus package could not be installed, or None once it is."""
    if shutil.which("prometheus") and shutil.which("promtool"):
        return None
    if not shutil.which("apt-get"):
        return "no apt-get on this machine (install Prometheus 2.x so that prometheus and " \
               "promtool are on PATH)"
    if os.geteuid() != 0:
        return "not root, so `apt-get install prometheus` cannot run (deploy/test.sh does it as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}"
    return None if shutil.which("promtool") else "the prometheus package installed no promtool"


@pytest.fixture(scope="session")
def promtool() -> str:
    reason = _install_prometheus()
    if reason:
        pytest.skip(f"promtool unavailable: {reason}")
    return shutil.which("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    reason = _install_prometheus()
    if reason:
        pytest.skip(f"prometheus unavailable: {reason}")
    return shutil.which("prometheus")
