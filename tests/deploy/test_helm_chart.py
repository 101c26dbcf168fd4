"""The Helm chart, checked against the app it deploys.

Static checks read Chart.yaml, values.yaml, values.schema.json and the templates. Rendering uses
Helm's own engine through helm-python-sdk (Helm's Go SDK as a shared library, from PyPI; the
`test` extra installs it): the output is parsed and every COSMOS_ variable is fed through the
real Settings, probe paths are looked up among the app's routes, and so on. Without that package
only the rendering tests skip.
"""
from __future__ import annotations

import re
import tomllib
import typing

import yaml

import app
from app.config import Settings, settings_env_names
# `helm` is the fixture that renders the chart (it skips without helm-python-sdk).
from tests.deploy.helm_chart import (CHART, CI_VALUES, REPO, SCHEMA, TEMPLATES, VALUES,
                                     VALUES_FILES, ci_values, container, env_of, helm, helper_block,
                                     pod_spec, render, route_endpoint, settings_from,
                                     strip_comments)


# --- static checks -------------------------------------------------------------------------------

def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "cosmos-serve"
    assert chart["appVersion"] == app.__version__ == pyproject["project"]["version"] == "0.1.0"


def test_probe_and_metrics_paths_are_the_right_routes():
    probes = VALUES["probes"]
    assert route_endpoint(probes["startup"]["path"]) == "ready"
    assert route_endpoint(probes["readiness"]["path"]) == "ready"
    assert route_endpoint(probes["liveness"]["path"]) == "live"
    assert route_endpoint(VALUES["metrics"]["path"]) == "prometheus_metrics"
    # Weights take minutes: the startup probe must wait far longer than the liveness probe.
    startup = probes["startup"]["periodSeconds"] * probes["startup"]["failureThreshold"]
    assert startup >= 15 * 60


def test_defaults_fit_the_app_and_the_image():
    assert VALUES["containerPort"] == Settings.model_fields["port"].default
    assert VALUES["model"]["path"] == Settings.model_fields["model"].default
    assert VALUES["model"]["tensorParallelSize"] == 1
    assert VALUES["resources"]["limits"]["nvidia.com/gpu"] == 1
    # The chart's shutdown grace is the server's default (COSMOS_SHUTDOWN_GRACE_S).
    assert VALUES["lifecycle"]["shutdownGraceSeconds"] == Settings.model_fields[
        "shutdown_grace_s"].default
    dockerfile = (REPO / "Dockerfile").read_text()
    (uid,) = set(re.findall(r"^USER (\d+)", dockerfile, re.M))  # the gpu and cpu targets'
    assert VALUES["podSecurityContext"]["runAsUser"] == int(uid)


def test_chart_list_of_settings_is_settings():
    listed = set(helper_block("cosmos-serve.settingsEnvNames").split())
    real = {name for name in settings_env_names() if name.startswith("COSMOS_")}
    assert listed == real, (
        f"update cosmos-serve.settingsEnvNames in {TEMPLATES / '_helpers.tpl'}: "
        f"add {sorted(real - listed)}, remove {sorted(listed - real)}")


def test_chart_managed_names_are_settings():
    managed = yaml.safe_load(helper_block("cosmos-serve.managedEnv"))
    known = settings_env_names()
    assert set(managed) <= set(known), set(managed) - set(known)
    # A NIM alias must point the user to the same value as its COSMOS_ twin.
    for name, value in managed.items():
        if name.startswith("NIM_"):
            (twin,) = [n for n, f in known.items() if f == known[name] and n.startswith("COSMOS_")]
            assert managed[twin] == value


def test_every_cosmos_name_in_the_chart_is_a_setting():
    known = settings_env_names()
    files = [*(p for p in TEMPLATES.rglob("*") if p.is_file()), CHART / "values.yaml", *CI_VALUES]
    seen = set()
    for path in files:
        for name in re.findall(r"\bCOSMOS_[A-Z0-9_]+", strip_comments(path.read_text())):
            seen.add(name)
            if name.endswith("_"):  # a prefix completed in the template, e.g. by severity
                assert any(k.startswith(name) for k in known), f"{path.name}: {name}*"
            else:
                assert name in known, f"{path.name}: {name} is not a Settings field"
    assert {"COSMOS_MODEL", "COSMOS_API_KEY", "COSMOS_GUARDRAIL_RULES_PATH"} <= seen
    for severity in ("info", "warning", "critical"):
        assert f"COSMOS_GUARDRAIL_POLICY_{severity.upper()}" in known
        assert severity in VALUES["guardrail"]["policy"]


def test_schema_enums_are_the_settings_literals():
    props = SCHEMA["properties"]
    quant = typing.get_args(Settings.model_fields["quantization"].annotation)
    literal_values = {v for arg in quant for v in typing.get_args(arg)}
    assert set(props["model"]["properties"]["quantization"]["enum"]) == {""} | literal_values
    policy = set(typing.get_args(Settings.model_fields["guardrail_policy_info"].annotation))
    for severity in ("info", "warning", "critical"):
        enum = props["guardrail"]["properties"]["policy"]["properties"][severity]["enum"]
        assert set(enum) == {""} | policy


# --- rendering with Helm's engine ----------------------------------------------------------------

@VALUES_FILES
def test_helm_lint_is_clean(helm, values_file):
    values = ci_values(helm, values_file) if values_file else None
    report = helm.lint(str(CHART), values, strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert not problems and not report["errors"], report


@VALUES_FILES
def test_rendered_deployment_fits_the_app(helm, values_file, monkeypatch):
    values = ci_values(helm, values_file) if values_file else {}
    manifests, _ = render(helm, values)
    spec, c = pod_spec(manifests), container(manifests)
    known = settings_env_names()

    assert spec["enableServiceLinks"] is False
    # The kubelet's SIGKILL comes after preStop and the server's whole shutdown grace.
    s_grace = settings_from(env_of(manifests), monkeypatch).shutdown_grace_s
    sleep = c["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] > int(sleep[1]) + s_grace
    assert manifests["Deployment"][0]["spec"]["progressDeadlineSeconds"] > (
        c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert int(c["resources"]["limits"]["nvidia.com/gpu"]) >= 1

    (port,) = c["ports"]
    assert port["name"] == "http"
    for probe, endpoint in [("startupProbe", "ready"), ("readinessProbe", "ready"),
                            ("livenessProbe", "live")]:
        get = c[probe]["httpGet"]
        assert route_endpoint(get["path"]) == endpoint and get["port"] == "http"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 900

    env = env_of(manifests)
    for name in env:
        if name.startswith(("COSMOS_", "NIM_")):
            assert name in known, f"{name} is not a Settings field"
    s = settings_from(env, monkeypatch)
    assert s.port == port["containerPort"]
    assert s.model == (values.get("model", {}).get("path") or VALUES["model"]["path"])
    assert s.tensor_parallel_size <= int(c["resources"]["limits"]["nvidia.com/gpu"])

    annotations = manifests["Deployment"][0]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port["containerPort"]
    assert route_endpoint(annotations["prometheus.io/path"]) == "prometheus_metrics"

    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert "/models" in mounts

    (service,) = manifests["Service"]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pod_labels = manifests["Deployment"][0]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_defaults_render_no_optional_parts(helm, monkeypatch):
    manifests, notes = render(helm)
    assert "ServiceMonitor" not in manifests
    assert "ConfigMap" not in manifests
    env = env_of(manifests)
    assert "COSMOS_API_KEY" not in env and "COSMOS_GUARDRAIL_RULES_PATH" not in env
    assert "COSMOS_QUANTIZATION" not in env  # an empty value would not validate
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    assert "emptyDir" in volumes["models"]
    s = settings_from(env, monkeypatch)
    assert s.api_key is None and s.guardrail_rules_path is None
    assert f'model="{s.model_name}"' in notes and 'api_key="unused"' in notes
