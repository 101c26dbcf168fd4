"""What the Helm chart tests share: the chart's files, rendering through Helm's own engine
(helm-python-sdk; the `helm` fixture skips without it), and reading a rendered pod's container,
environment and the Settings the server would build from it."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from app.config import Settings

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


DEPLOY = REPO / "deploy"


def by_kind(helm, values: dict, kind: str) -> list[dict]:
    return render(helm, values)[0].get(kind, [])
