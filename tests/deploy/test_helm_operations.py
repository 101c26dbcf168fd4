"""The chart in operation (issue 17), rendered with Helm's engine: rollout and grace, scaling on
vLLM's queue (HPA or KEDA), availability, weights claim and hub download, alerts and dashboard,
ingress, and the `helm test` pod run against a real server."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

# `helm` is the fixture that renders the chart (it skips without helm-python-sdk).
from tests.deploy.helm_chart import (DEPLOY, REPO, VALUES, container, env_of, helm, pod_spec,
                                     render, settings_from)


# --- issue 17: scaling, availability, weights, monitoring, helm test --------------------------------

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
