"""The alert rules and the dashboard, checked with Prometheus' own tools: promtool parses every
rule and every dashboard query, runs the rules' unit tests (deploy/prometheus/alerts.test.yml),
and checks the scrape config the compose stack and deploy/stack.sh use. Whether the series they
query are ones the server exports is checked against a live server in test_prometheus.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import yaml

from tests.deploy.conftest import DASHBOARD, PROMETHEUS_DIR, REPO

ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "alerts.test.yml"
RULES = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
DASH = json.loads(DASHBOARD.read_text())
PANELS = [p for p in DASH["panels"] if p["type"] != "row"]

# Grafana's variables, as the dashboard's queries would see them.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$job": "cosmos-serve",
                "$instance": ".*"}


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def dashboard_queries() -> list[str]:
    out = []
    for p in PANELS:
        for t in p["targets"]:
            expr = t["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out.append(expr)
    return out


def test_promtool_check_rules(promtool):
    done = run(promtool, "check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULES)} rules found" in done.stdout


def test_promtool_unit_tests_of_every_alert(promtool):
    done = subprocess.run([promtool, "test", "rules", ALERT_TESTS.name], cwd=PROMETHEUS_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    # Every alert has a case in which it fires.
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    firing = {t["alertname"] for c in cases for t in c.get("alert_rule_test", [])
              if t.get("exp_alerts")}
    assert firing == {r["alert"] for r in RULES}


def test_promtool_unit_tests_catch_a_changed_threshold(promtool, tmp_path):
    # The unit tests pin the thresholds: a rule set with the 5xx threshold moved fails them.
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text().replace("> 0.05", "> 0.5"))
    (tmp_path / ALERT_TESTS.name).write_text(ALERT_TESTS.read_text())
    done = subprocess.run([promtool, "test", "rules", ALERT_TESTS.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "CosmosServeHigh5xxRate" in done.stdout + done.stderr


def test_every_alert_has_severity_summary_and_a_runbook_section():
    runbook = (REPO / "docs" / "alerts.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in RULES:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        doc, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert doc == "docs/alerts.md" and anchor in anchors, rule["alert"]
        assert 'job="cosmos-serve"' in rule["expr"], f"{rule['alert']} must select the job"


def test_promtool_checks_the_shipped_and_the_local_scrape_config(promtool, tmp_path):
    done = run(promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    local = tmp_path / "prometheus.yml"
    out = subprocess.run([sys.executable, str(PROMETHEUS_DIR / "local_config.py"), "--target",
                          "127.0.0.1:18000", "--scrape-interval", "2s"], capture_output=True,
                         text=True, check=True).stdout
    local.write_text(out)
    done = run(promtool, "check", "config", str(local))
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(out)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "cosmos-serve"
    assert job["static_configs"] == [{"targets": ["127.0.0.1:18000"]}]
    assert config["rule_files"] == [str(ALERTS)]


def test_promtool_parses_every_dashboard_query(promtool, tmp_path):
    # promtool parses a rule's expression with Prometheus' own parser: the dashboard's queries as
    # recording rules.
    queries = dashboard_queries()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = run(promtool, "check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    # ... and a broken query would not pass.
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": queries[0] + ")"}]}]}))
    assert run(promtool, "check", "rules", str(path)).returncode != 0


def test_dashboard_shows_what_an_operator_needs():
    exprs = " ".join(dashboard_queries())
    for metric in ["cosmos_requests_total", "cosmos_time_to_first_token_seconds_bucket",
                   "cosmos_request_duration_seconds_bucket", "cosmos_completion_tokens_total",
                   "cosmos_ingest_vision_tokens_bucket", "cosmos_ingest_decode_seconds_bucket",
                   "cosmos_ingest_decode_queue_depth", "cosmos_ingest_cache_total",
                   "cosmos_guardrail_verdicts_total", "vllm:kv_cache_usage_perc",
                   "vllm:num_requests_waiting", "vllm:num_requests_running"]:
        assert metric in exprs, f"the dashboard has no panel on {metric}"
    titles = {p["title"] for p in PANELS}
    assert {"Requests by status", "Time to first token", "Output tokens/s",
            "Vision tokens per request", "Decode seconds", "Cache hit rate",
            "Guardrail verdicts", "KV-cache usage"} <= titles


def test_dashboard_is_portable_and_well_formed():
    ids = [p["id"] for p in DASH["panels"]]
    assert len(ids) == len(set(ids))
    assert DASH["uid"] == "cosmos-serve" and DASH["schemaVersion"] >= 36
    variables = {v["name"]: v for v in DASH["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    # No panel is tied to one Grafana's data source uid, and every query selects $job/$instance.
    for p in PANELS:
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            assert 'job="$job"' in t["expr"] and 'instance=~"$instance"' in t["expr"], t["expr"]
    # Panels do not overlap on Grafana's 24-column grid.
    cells = set()
    for p in DASH["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))
