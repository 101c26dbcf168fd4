"""deploy/compose.yaml, checked without a Docker engine: against the Compose specification's JSON
schema (check-jsonschema's vendored copy), and against what it refers to (Dockerfile targets,
mounted files, the scrape target, Grafana's data source and dashboard folder).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DASHBOARD, PROMETHEUS_DIR, REPO
from tests.deploy.dockerfile import stages

DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
SPEC = yaml.safe_load(COMPOSE.read_text())
SERVICES = SPEC["services"]


def test_compose_file_is_valid_compose_spec():
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) \
        or shutil.which("check-jsonschema")
    if not exe:
        pytest.skip("check-jsonschema is not installed (the `test` extra has it)")
    done = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = COMPOSE.parent / ".compose-broken.yaml"
    try:  # the check can fail: a misspelt key is caught
        broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restarts: always", 1))
        done = subprocess.run([exe, "--builtin-schema", "vendor.compose-spec", str(broken)],
                              capture_output=True, text=True)
        assert done.returncode != 0
    finally:
        broken.unlink()


def test_one_server_per_profile_gpu_by_default():
    servers = {name: s for name, s in SERVICES.items() if name.startswith("cosmos-serve")}
    assert {name: s["profiles"] for name, s in servers.items()} == {
        "cosmos-serve-gpu": ["gpu"], "cosmos-serve-cpu": ["cpu"]}
    env = dict(line.split("=", 1) for line in (DEPLOY / ".env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["COMPOSE_PROFILES"] == "gpu"
    # Prometheus and Grafana run with either.
    assert "profiles" not in SERVICES["prometheus"] and "profiles" not in SERVICES["grafana"]
    targets = {name for _, name, _ in stages() if name}
    for name, s in servers.items():
        assert s["build"]["context"] == ".." and (DEPLOY / "..").resolve() == REPO
        assert s["build"]["target"] in targets, f"{name}: no such Dockerfile target"
        # Both answer as the host prometheus.yml scrapes.
        assert s["networks"]["default"]["aliases"] == ["cosmos-serve"]
    gpu = servers["cosmos-serve-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_prometheus_scrapes_the_server_with_the_shipped_rules():
    prom = SERVICES["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prom["image"])
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prom["volumes"]}
    assert (DEPLOY / mounts["/etc/prometheus"]).resolve() == PROMETHEUS_DIR
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "cosmos-serve"
    assert job["static_configs"] == [{"targets": ["cosmos-serve:8000"]}]
    for rules in config["rule_files"]:
        assert (PROMETHEUS_DIR / rules).is_file()


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard():
    grafana = SERVICES["grafana"]
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", grafana["image"])
    mounts = {m.split(":")[1]: (DEPLOY / m.split(":")[0]).resolve() for m in grafana["volumes"]
              if m.startswith("./")}
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    prom_port = SERVICES["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{prom_port}"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "cosmos-serve.yml").read_text())[
        "providers"]
    folder = provider["options"]["path"]
    assert mounts[folder] == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{folder}/{DASHBOARD.name}"
