"""The Dockerfile's build context and build stage, run here: .dockerignore keeps what the build
copies and nothing else, the build stage's requirements are pyproject's dependencies, and the
wheel the image installs carries every tracked app file.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.deploy.dockerfile import INSTRUCTIONS, PYPROJECT, REPO, in_build_context, stages


# --- build context and build stage ---------------------------------------------------------------

def test_build_context_holds_what_the_build_copies_and_nothing_else():
    for word, rest in INSTRUCTIONS:
        if word == "COPY" and "--from" not in rest:
            *sources, _ = rest.split()
            for src in sources:
                assert (REPO / src).exists(), f"COPY {src}: no such file"
                assert in_build_context(src), f"COPY {src}: excluded by .dockerignore"
    copied = {src for w, rest in INSTRUCTIONS if w == "COPY" and "--from" not in rest
              for src in rest.split()[:-1]}
    readme = PYPROJECT["project"]["readme"]
    assert readme in copied and in_build_context(readme), "setuptools needs pyproject's readme"
    tracked = subprocess.run(["git", "ls-files", "app"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    for path in tracked or ["app/config.py", "app/api/routes.py"]:
        assert in_build_context(path), path
    for path in [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "models/ft/config.json",
                 ".cache/tiny-model/config.json", "app/__pycache__/config.cpython-312.pyc",
                 "helm/cosmos-serve/values.yaml", "../shared/media/clip.mp4"]:
        assert not in_build_context(path), f"{path} would be sent to the Docker daemon"


def _build_stage_requirements_snippet() -> str:
    (build_stage,) = [instrs for _, name, instrs in stages() if name == "build"]
    run = " ".join(rest for w, rest in build_stage if w == "RUN")
    match = re.search(r'python -c "(.+?)" +> /dist/requirements\.txt', run)
    assert match, "the build stage should write /dist/requirements.txt from pyproject.toml"
    # Inside the shell's double quotes a backslash-n stays as it is: Python sees the escape.
    return match.group(1)


def test_build_stage_requirements_are_pyprojects_dependencies(tmp_path):
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    code = _build_stage_requirements_snippet()
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert [line for line in out if line] == PYPROJECT["project"]["dependencies"]
    # The runtime stage installs these with --no-deps for our wheel: nothing may pull in vLLM.
    assert not any(re.match(r"(vllm|torch)\b", dep) for dep in out)


def test_the_wheel_the_image_installs_carries_every_tracked_app_file(tmp_path):
    pytest.importorskip("setuptools")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    tracked = subprocess.run(["git", "ls-files", "app"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    for path in ["pyproject.toml", PYPROJECT["project"]["readme"], *tracked]:
        if not (REPO / path).exists():
            continue  # deleted in the work tree, not yet committed
        (ctx / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, ctx / path)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist"), str(ctx)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("cosmos_serve-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    missing = [p for p in tracked if (REPO / p).exists() and p not in names]
    assert not missing, f"left out of the wheel (pyproject's package-data?): {missing}"
    assert "cosmos-serve = app.cli:main" in entry_points
