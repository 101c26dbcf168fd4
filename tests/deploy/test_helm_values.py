"""The chart's values, rendered with Helm's engine: FP8, the guardrail's rules and the API key
secret, the ServiceMonitor, weights from a host path, the served name in NOTES.txt; and the
mistakes (including typos, by the closed schema) that fail the install."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from app.config import Settings
# `helm` is the fixture that renders the chart (it skips without helm-python-sdk).
from tests.deploy.helm_chart import (CI_VALUES, ci_values, container, env_of, helm, pod_spec,
                                     render, route_endpoint, settings_from)


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
