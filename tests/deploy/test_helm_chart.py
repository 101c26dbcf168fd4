"""The Helm chart, checked against the app it deploys.

Static checks read Chart.yaml, values.yaml, values.schema.json and the templates. Rendering uses
Helm's own engine through helm-python-sdk (Helm's Go SDK as a shared library, from PyPI; the
`test` extra installs it): the output is parsed and every COSMOS_ variable is fed through the
real Settings, probe paths are looked up among the app's routes, and so on. Without that package
only the rendering tests skip.
"""
from __future__ import annotations

import json
import os
import re
import tomllib
import typing
from pathlib import Path

import pytest
import yaml

import app
from app.config import Settings, settings_env_names

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "cosmos-serve"
TEMPLATES = CHART / "templates"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())


def route_endpoint(path: str) -> str:
    from app.api.routes import router

    for r in router.routes:
        if getattr(r, "path", None) == path:
            return r.endpoint.__name__
    raise AssertionError(f"{path} is not a route of app.api.routes")


def helper_block(name: str) -> str:
    text = (TEMPLATES / "_helpers.tpl").read_text()
    match = re.search(r'\{\{-? define "' + re.escape(name) + r'" -?\}\}(.*?)\{\{-? end \}\}',
                      text, re.S)
    assert match, f"no {name} in _helpers.tpl"
    return match.group(1)


def strip_comments(text: str) -> str:
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", "", text, flags=re.S)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


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
    assert VALUES["terminationGracePeriodSeconds"] >= 30  # uvicorn drains for up to 30 s
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
    files = [*TEMPLATES.iterdir(), CHART / "values.yaml", *CI_VALUES]
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

@pytest.fixture(scope="module")
def helm():
    return pytest.importorskip(
        "helm_python", reason="helm-python-sdk (Helm's engine, in the `test` extra) is not "
                              "installed, so the chart is not rendered")


def render(helm, values: dict | None = None) -> tuple[dict[str, list[dict]], str]:
    """Rendered manifests by kind, and NOTES.txt."""
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values or {}, name="cosmos-serve", namespace="ml")
    by_kind: dict[str, list[dict]] = {}
    notes = ""
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                by_kind.setdefault(doc["kind"], []).append(doc)
    return by_kind, notes


def ci_values(helm, path: Path) -> dict:
    return helm.values_from_yaml(path.read_text())


def pod_spec(manifests) -> dict:
    (deployment,) = manifests["Deployment"]
    return deployment["spec"]["template"]["spec"]


def container(manifests) -> dict:
    (c,) = pod_spec(manifests)["containers"]
    return c


def env_of(manifests) -> dict[str, dict]:
    return {e["name"]: e for e in container(manifests)["env"]}


def settings_from(env: dict[str, dict], monkeypatch) -> Settings:
    """The Settings the server would build from the rendered environment."""
    for key in list(os.environ):
        if key.startswith(("COSMOS_", "NIM_")):
            monkeypatch.delenv(key)
    for name, entry in env.items():
        if "value" in entry:
            monkeypatch.setenv(name, entry["value"])
        elif entry.get("valueFrom", {}).get("secretKeyRef") and name.startswith("COSMOS_"):
            monkeypatch.setenv(name, "from-the-secret")
    return Settings()


VALUES_FILES = pytest.mark.parametrize("values_file", [None, *CI_VALUES],
                                       ids=lambda p: p.name if p else "default")


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
    assert spec["terminationGracePeriodSeconds"] == 60
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


def load_guardrail(configmap: dict, rules_file: str, tmp_path: Path, policy: dict):
    """The rules as the server loads them from the mounted file."""
    try:
        from app.guardrail import Guardrail
    except ImportError as exc:
        pytest.skip(f"app.guardrail is not importable in this checkout: {exc}")
    path = tmp_path / rules_file
    path.write_text(configmap["data"][rules_file])
    return Guardrail.from_yaml(path, policy=policy)


def test_fp8_guardrail_and_api_key(helm, monkeypatch, tmp_path):
    (path,) = [p for p in CI_VALUES if "guardrail" in p.name]
    values = ci_values(helm, path)
    manifests, notes = render(helm, values)
    c, spec, env = container(manifests), pod_spec(manifests), env_of(manifests)
    s = settings_from(env, monkeypatch)

    assert s.quantization == "fp8"
    assert s.max_model_len == values["model"]["maxModelLen"]
    assert s.model_name == values["model"]["servedModelName"]
    assert s.tensor_parallel_size == 2

    assert env["COSMOS_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": values["apiKey"]["existingSecret"], "key": "api-key"}
    assert "value" not in env["COSMOS_API_KEY"]
    assert "COSMOS_API_KEY" in notes

    # The rules ConfigMap is mounted and the setting names a file of it.
    (configmap,) = manifests["ConfigMap"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "guardrail-rules")
    volume = next(v for v in spec["volumes"] if v["name"] == "guardrail-rules")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    rules_path = Path(str(s.guardrail_rules_path))
    assert rules_path.parent == Path(mount["mountPath"]) and mount["readOnly"] is True
    assert yaml.safe_load(configmap["data"][rules_path.name]) == yaml.safe_load(
        values["guardrail"]["rules"])
    annotations = manifests["Deployment"][0]["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/guardrail-rules"])
    assert s.guardrail_policy == {"info": "annotate", "warning": "annotate", "critical": "block"}
    guardrail = load_guardrail(configmap, rules_path.name, tmp_path, s.guardrail_policy)
    assert "site.forklift_speed" in guardrail.rule_ids and guardrail.may_block

    # `env`: numbers as Settings reads them (Helm would print 2.097152e+08), lists as JSON.
    assert env["COSMOS_MAX_REQUEST_BODY_BYTES"]["value"] == "209715200"
    assert s.max_request_body_bytes == 209715200
    assert s.gpu_memory_utilization == 0.85 and s.video_truncate_long is True
    assert s.allowed_local_media_dirs == (Path("/data/clips"),)
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hf-token"

    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "cosmos-weights",
                                                          "readOnly": True}
    (monitor,) = manifests["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert route_endpoint(endpoint["path"]) == "prometheus_metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (service,) = manifests["Service"]
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_service_monitor_only_when_enabled(helm):
    on, _ = render(helm, {"metrics": {"serviceMonitor": {"enabled": True}}})
    off, _ = render(helm, {"metrics": {"serviceMonitor": {"enabled": False}}})
    assert len(on["ServiceMonitor"]) == 1
    assert "ServiceMonitor" not in off


def test_rules_given_as_a_map_and_weights_from_a_host_path(helm, monkeypatch, tmp_path):
    rules = {"version": 1, "rules": [{"id": "format.no_answer", "type": "format",
                                      "condition": "no_answer", "severity": "warning",
                                      "message": "no <answer> block"}]}
    manifests, _ = render(helm, {"guardrail": {"rules": rules},
                                 "weights": {"hostPath": "/mnt/weights"}})
    (configmap,) = manifests["ConfigMap"]
    assert yaml.safe_load(configmap["data"]["rules.yaml"]) == rules
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    assert volumes["models"]["hostPath"]["path"] == "/mnt/weights"
    s = settings_from(env_of(manifests), monkeypatch)
    guardrail = load_guardrail(configmap, Path(str(s.guardrail_rules_path)).name, tmp_path,
                               s.guardrail_policy)
    assert guardrail.rule_ids == ["format.no_answer"]


def test_served_model_name_in_notes_is_the_servers(helm, monkeypatch):
    _, notes = render(helm, {"model": {"path": "/models/team-a/finetune-v3/"},
                             "weights": {"existingClaim": "team-a"}})
    s = Settings(model="/models/team-a/finetune-v3/")
    assert f'model="{s.model_name}"' in notes


@pytest.mark.parametrize("values, message", [
    ({"env": {"COSMOS_MAX_MODEL_LENGTH": 4096}}, "COSMOS_MAX_MODEL_LENGTH is not a cosmos-serve"),
    ({"env": {"COSMOS_MODEL": "/models/x"}}, "model.path"),
    ({"env": {"NIM_MODEL_NAME": "/models/x"}}, "model.path"),
    ({"extraEnv": [{"name": "COSMOS_API_KEY", "value": "k"}]}, "apiKey.existingSecret"),
    ({"model": {"tensorParallelSize": 2}}, "tensorParallelSize"),
    ({"weights": {"existingClaim": "a", "hostPath": "/b"}}, "not both"),
    ({"model": {"quantization": "int4"}}, "quantization"),
    ({"guardrail": {"policy": {"critical": "drop"}}}, "critical"),
])
def test_mistakes_fail_the_install(helm, values, message):
    with pytest.raises(helm.HelmError) as excinfo:
        render(helm, values)
    assert message in str(excinfo.value)
