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
import subprocess
import sys
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
    # issue 17: what cannot work is refused at install time
    ({"weights": {"readOnly": True}}, "readOnly with the hub model"),
    ({"weights": {"persistence": {"enabled": True}}, "replicaCount": 2}, "ReadWriteOnce"),
    ({"weights": {"persistence": {"enabled": True}},
      "autoscaling": {"enabled": True, "maxReplicas": 3}}, "ReadWriteOnce"),
    ({"weights": {"persistence": {"enabled": True}, "existingClaim": "x"}}, "not both"),
    ({"model": {"path": "/models/ft"}}, "is a directory, but /models is an empty emptyDir"),
    ({"model": {"path": "/models/ft"}, "weights": {"hostPath": "/w", "download": {"enabled": True}}},
     "weights.download fetches a hub id"),
    ({"autoscaling": {"enabled": True, "keda": {"enabled": True}}}, "either the HPA"),
    ({"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}, "minReplicas"),
    ({"autoscaling": {"enabled": True, "requestsPerReplica": None}}, "needs a metric"),
    ({"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}, "not both"),
    ({"terminationGracePeriodSeconds": 60}, "must exceed"),
    ({"hf": {"tokenSecret": "hf"}, "extraEnv": [{"name": "HF_TOKEN", "value": "x"}]},
     "clashes with hf.tokenSecret"),
    ({"env": {"COSMOS_SHUTDOWN_GRACE_S": 10}}, "lifecycle.shutdownGraceSeconds"),
    # the closed schema: a typo anywhere in the chart's own keys fails
    ({"replicaCont": 2}, "replicaCont"),
    ({"autoscaling": {"enable": True}}, "enable"),
    ({"weights": {"persistence": {"sise": "10Gi"}}}, "sise"),
    ({"metrics": {"serviceMonitor": {"enabled": True, "intervall": "5s"}}}, "intervall"),
])
def test_mistakes_fail_the_install(helm, values, message):
    with pytest.raises(helm.HelmError) as excinfo:
        render(helm, values)
    assert message in str(excinfo.value)


# --- issue 17: scaling, availability, weights, monitoring, helm test --------------------------------

DEPLOY = REPO / "deploy"


def by_kind(helm, values: dict, kind: str) -> list[dict]:
    return render(helm, values)[0].get(kind, [])


def test_default_rollout_needs_no_spare_gpu(helm):
    manifests, notes = render(helm)
    deployment = manifests["Deployment"][0]["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    # Kubernetes' 600 s default would fail a 30-minute start, and NOTES' rollout status with it.
    startup = VALUES["probes"]["startup"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert deployment["progressDeadlineSeconds"] == budget + 600
    timeout = int(re.search(r"rollout status .* --timeout=(\d+)m", notes).group(1)) * 60
    assert timeout >= budget
    volumes = {v["name"]: v for v in deployment["template"]["spec"]["volumes"]}
    assert volumes["models"]["emptyDir"] == {"sizeLimit": VALUES["weights"]["emptyDir"]["sizeLimit"]}
    for kind in ("HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget", "Ingress",
                 "PersistentVolumeClaim", "PrometheusRule"):
        assert kind not in manifests


def test_grace_follows_the_shutdown_setting(helm, monkeypatch):
    manifests, _ = render(helm, {"lifecycle": {"preStopSleepSeconds": 15, "shutdownGraceSeconds": 45}})
    spec, c = pod_spec(manifests), container(manifests)
    assert settings_from(env_of(manifests), monkeypatch).shutdown_grace_s == 45
    assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "15"]
    assert spec["terminationGracePeriodSeconds"] == 15 + 45 + 10
    manifests, _ = render(helm, {"lifecycle": {"preStopSleepSeconds": 0}})
    assert "lifecycle" not in container(manifests)


def test_hpa_scales_on_vllms_queue_with_cpu_as_fallback(helm):
    values = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5,
                              "cpuUtilization": 75}}
    manifests, _ = render(helm, values)
    assert "replicas" not in manifests["Deployment"][0]["spec"]  # the HPA owns the count
    (hpa,) = manifests["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": manifests["Deployment"][0]["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    pods, cpu = hpa["spec"]["metrics"]
    assert pods["pods"]["metric"]["name"] == VALUES["autoscaling"]["metricName"]
    assert pods["pods"]["target"] == {"type": "AverageValue",
                                      "averageValue": str(VALUES["autoscaling"]["requestsPerReplica"])}
    assert cpu["resource"] == {"name": "cpu", "target": {"type": "Utilization",
                                                         "averageUtilization": 75}}
    # Scale up at once, down slowly: a new replica takes minutes to load.
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    # The adapter rule docs/deploy.md gives serves that metric name from vLLM's two gauges.
    doc = (REPO / "docs" / "deploy.md").read_text()
    rule = yaml.safe_load(re.search(r"```yaml\n(rules:\n  custom:.*?)```", doc, re.S).group(1))
    (custom,) = rule["rules"]["custom"]
    assert custom["name"]["as"] == VALUES["autoscaling"]["metricName"]
    assert "vllm:num_requests_waiting" in custom["metricsQuery"]
    assert "vllm:num_requests_running" in custom["metricsQuery"]


def test_keda_scaled_object_queries_this_releases_pods(helm):
    manifests, _ = render(helm, {"autoscaling": {"keda": {"enabled": True}, "maxReplicas": 3}})
    assert "HorizontalPodAutoscaler" not in manifests
    assert "replicas" not in manifests["Deployment"][0]["spec"]
    (so,) = manifests["ScaledObject"]
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["spec"]["maxReplicaCount"] == 3
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    query = trigger["metadata"]["query"]
    name = manifests["Deployment"][0]["metadata"]["name"]
    for gauge in ("vllm:num_requests_waiting", "vllm:num_requests_running"):
        assert f'{gauge}{{namespace="ml", pod=~"{name}-.*"}}' in query
    assert trigger["metadata"]["threshold"] == VALUES["autoscaling"]["keda"]["threshold"]


def test_pdb_and_topology_spread(helm):
    spread = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
               "whenUnsatisfiable": "ScheduleAnyway"},
              {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": {"team": "a"}}}]
    manifests, _ = render(helm, {"podDisruptionBudget": {"enabled": True},
                                 "topologySpreadConstraints": spread})
    (pdb,) = manifests["PodDisruptionBudget"]
    pod_labels = manifests["Deployment"][0]["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    first, second = pod_spec(manifests)["topologySpreadConstraints"]
    assert first["labelSelector"]["matchLabels"].items() <= pod_labels.items()
    assert second == spread[1]
    manifests, _ = render(helm, {"podDisruptionBudget": {"enabled": True, "minAvailable": 1,
                                                         "maxUnavailable": None}})
    assert manifests["PodDisruptionBudget"][0]["spec"] == {
        "minAvailable": 1, "selector": pdb["spec"]["selector"]}


def test_weights_claim_and_hub_download_with_the_token_secret(helm, monkeypatch):
    values = {"weights": {"persistence": {"enabled": True, "size": "40Gi", "storageClass": "fast"},
                          "download": {"enabled": True}},
              "hf": {"tokenSecret": "hf-token", "tokenKey": "tok"}}
    manifests, _ = render(helm, values)
    (pvc,) = manifests["PersistentVolumeClaim"]
    assert pvc["spec"] == {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                           "resources": {"requests": {"storage": "40Gi"}}}
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    spec = pod_spec(manifests)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    (init,) = spec["initContainers"]
    init_env = {e["name"]: e for e in init["env"]}
    token = {"secretKeyRef": {"name": "hf-token", "key": "tok"}}
    assert init_env["HF_TOKEN"]["valueFrom"] == token == env_of(manifests)["HF_TOKEN"]["valueFrom"]
    assert init_env["COSMOS_MODEL"]["value"] == VALUES["model"]["path"]
    # The init container fills the cache the server reads: the same HF_HOME, the same volume.
    assert init_env["HF_HOME"]["value"] == "/models/.hf-cache"
    assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
    assert "snapshot_download(os.environ[\"COSMOS_MODEL\"])" in init["command"][2]
    assert init["image"] == container(manifests)["image"]
    compile(init["command"][2], "download-weights", "exec")


def test_alert_rules_and_dashboard_ship_in_the_chart(helm):
    manifests, _ = render(helm, {"alerts": {"enabled": True, "labels": {"release": "kps"}},
                                 "dashboard": {"enabled": True}})
    (rule,) = manifests["PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    (dash,) = [c for c in manifests["ConfigMap"] if c["metadata"]["name"].endswith("-dashboard")]
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dash["data"]["cosmos-serve.json"]) == json.loads(
        (DEPLOY / "grafana" / "dashboards" / "cosmos-serve.json").read_text())
    # Another scrape job: every selector follows.
    manifests, _ = render(helm, {"alerts": {"enabled": True, "job": "kubernetes-pods"}})
    exprs = [r["expr"] for g in manifests["PrometheusRule"][0]["spec"]["groups"] for r in g["rules"]]
    assert all('job="kubernetes-pods"' in e and "cosmos-serve" not in e for e in exprs)


def test_service_monitor_labels_the_job_the_rules_select(helm):
    manifests, _ = render(helm, {"metrics": {"serviceMonitor": {"enabled": True}},
                                 "alerts": {"job": "cosmos-serve"}})
    (endpoint,) = manifests["ServiceMonitor"][0]["spec"]["endpoints"]
    relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
    assert relabel["job"]["replacement"] == "cosmos-serve"
    assert "authorization" not in endpoint
    manifests, _ = render(helm, {"metrics": {"serviceMonitor": {"enabled": True}},
                                 "apiKey": {"existingSecret": "k"},
                                 "env": {"COSMOS_METRICS_REQUIRE_KEY": True}})
    (endpoint,) = manifests["ServiceMonitor"][0]["spec"]["endpoints"]
    assert endpoint["authorization"]["credentials"] == {"name": "k", "key": "api-key"}


def test_ingress_routes_to_the_service(helm):
    manifests, _ = render(helm, {"ingress": {"enabled": True, "className": "nginx"}})
    (ing,) = manifests["Ingress"]
    (service,) = manifests["Service"]
    (rule,) = ing["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert path["backend"]["service"] == {"name": service["metadata"]["name"],
                                          "port": {"name": "http"}}


def run_test_pod(pod: dict, url: str) -> subprocess.CompletedProcess:
    (c,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in c["env"]}
    env["TEST_URL"] = url  # the Service's address, here the live server's
    for e in c["env"]:
        if "valueFrom" in e:
            env[e["name"]] = "the-key"
    assert c["command"][:2] == ["python3", "-c"]
    return subprocess.run([sys.executable, "-c", c["command"][2]], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_helm_test_pod_passes_against_a_real_server_and_fails_against_a_wrong_one(helm, live):
    from app.engine.fake import FakeEngine

    manifests, _ = render(helm, {"model": {"path": "tiny"}})
    (pod,) = manifests["Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (c,) = pod["spec"]["containers"]
    service = manifests["Service"][0]
    assert {"name": "TEST_URL", "value":
            f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"} in c["env"]
    with live(FakeEngine()) as srv:
        done = run_test_pod(pod, srv.url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "ready: 200" in done.stdout and "chat: tiny" in done.stdout
        # ... a model the server does not serve fails the test.
        manifests, _ = render(helm, {"model": {"path": "other"}})
        assert run_test_pod(manifests["Pod"][0], srv.url).returncode != 0
    with live(FakeEngine(), api_key="the-key") as srv:
        manifests, _ = render(helm, {"model": {"path": "tiny"}, "apiKey": {"existingSecret": "k"}})
        done = run_test_pod(manifests["Pod"][0], srv.url)
        assert done.returncode == 0, done.stdout + done.stderr
