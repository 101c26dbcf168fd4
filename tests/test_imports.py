"""No import cycle in app/: module-level imports between app modules form a DAG (a package's
`from app.pkg import submodule` counts as depending on the submodule, as pylint counts it)."""
from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"


def _modules() -> dict[str, Path]:
    out = {}
    for f in APP.rglob("*.py"):
        name = ".".join(("app", *f.relative_to(APP).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = f
    return out


def _deps(path: Path, modules: dict[str, Path]) -> set[str]:
    deps = set()
    for node in ast.parse(path.read_text()).body:  # module level only: lazy imports are fine
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                deps.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            deps.update(a.name for a in node.names if a.name.startswith("app"))
    return deps


def test_no_import_cycles():
    modules = _modules()
    graph = {m: _deps(p, modules) & modules.keys() for m, p in modules.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_chat_service_imports_no_web_framework():
    for f in (APP / "serving").glob("*.py"):
        tree = ast.parse(f.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not {n for n in names if n.split(".")[0] in ("fastapi", "starlette")}, f
