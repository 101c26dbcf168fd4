"""The Dockerfile as the Dockerfile tests read it, without a Docker engine: its instructions
parsed as Docker's parser does, its stages, the final stage's ENV and HEALTHCHECK, the app's
routes, what .dockerignore leaves in the build context, and a clean environment for building
Settings from the image's variables.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path

import pytest

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


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith(("COSMOS_", "NIM_")):
            monkeypatch.delenv(key)
    return monkeypatch


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
