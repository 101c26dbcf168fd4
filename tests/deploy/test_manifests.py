"""Every manifest the chart renders, for every values file in helm/cosmos-serve/ci and the
defaults, validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: an
unknown field fails) at the oldest version the chart supports and the newest, and the custom
resources against their CRDs' models (ServiceMonitor, PrometheusRule: prometheus-operator's;
ScaledObject: KEDA's), where a field the CRD does not know, which the API server would prune,
fails the check too.
"""
from __future__ import annotations

import copy

import pytest
import yaml

from tests.deploy.helm_chart import CHART, CI_VALUES, ci_values

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate (the `test` extra) is not installed")
KUBE_VERSIONS = ["1.25.0", "1.37.0"]  # Chart.yaml's kubeVersion floor, and the newest schemas


def crd_model(kind: str):
    if kind in ("ServiceMonitor", "PrometheusRule"):
        models = pytest.importorskip("cloudcoil.models.prometheus_operator.v1")
    elif kind == "ScaledObject":
        models = pytest.importorskip("cloudcoil.models.keda.v1alpha1")
    else:
        raise AssertionError(f"no CRD model for {kind}")
    return getattr(models, kind)


def rendered(helm, values: dict) -> list[dict]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values, name="cosmos", namespace="ml")
    return [doc for path, text in out.items() if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def check(doc: dict, version: str) -> None:
    if "." in doc["apiVersion"].split("/")[0] and not doc["apiVersion"].startswith(
            ("apps/", "policy/", "autoscaling/", "networking.k8s.io/")):
        model = crd_model(doc["kind"])
        obj = model.model_validate(doc)  # types and enums
        back = obj.model_dump(by_alias=True, exclude_unset=True, mode="json")
        assert back == doc, f"{doc['kind']}: fields the CRD does not know: {doc} != {back}"
    else:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.fixture(scope="module")
def helm():
    return pytest.importorskip("helm_python", reason="helm-python-sdk is not installed")


@pytest.mark.parametrize("values_file", [None, *CI_VALUES], ids=lambda p: p.name if p else "default")
@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_every_rendered_manifest_is_valid(helm, values_file, version):
    values = ci_values(helm, values_file) if values_file else {}
    docs = rendered(helm, values)
    for doc in docs:
        check(doc, version)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "Pod"} <= kinds


def test_all_optional_kinds_are_covered(helm):
    kinds = set()
    for path in CI_VALUES:
        kinds |= {d["kind"] for d in rendered(helm, ci_values(helm, path))}
    assert {"HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget", "ServiceMonitor",
            "PrometheusRule", "Ingress", "PersistentVolumeClaim", "ConfigMap"} <= kinds


@pytest.mark.parametrize("kind, mutate", [
    ("Deployment", lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriod=60)),
    ("Deployment", lambda d: d["spec"].update(replicas="two")),
    ("HorizontalPodAutoscaler", lambda d: d["spec"].pop("scaleTargetRef")),
    ("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(intervall="30s")),
    ("PrometheusRule", lambda d: d["spec"]["groups"][0]["rules"][0].update(expr=["up"])),
])
def test_the_validation_catches_a_broken_manifest(helm, kind, mutate):
    (path,) = [p for p in CI_VALUES if "autoscaling" in p.name]
    (doc,) = [d for d in rendered(helm, ci_values(helm, path)) if d["kind"] == kind]
    broken = copy.deepcopy(doc)
    mutate(broken)
    with pytest.raises(Exception):
        check(broken, KUBE_VERSIONS[-1])


def test_the_validation_catches_a_broken_scaled_object(helm):
    (path,) = [p for p in CI_VALUES if "keda" in p.name]
    (doc,) = [d for d in rendered(helm, ci_values(helm, path)) if d["kind"] == "ScaledObject"]
    check(doc, KUBE_VERSIONS[-1])
    broken = copy.deepcopy(doc)
    broken["spec"]["minReplicaCount"] = "one"
    with pytest.raises(Exception):
        check(broken, KUBE_VERSIONS[-1])
