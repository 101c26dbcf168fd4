"""A bf16 source checkpoint (the tiny model plus a profile) and its fp8-dynamic copy, written once
per session by the real `cosmos-serve quantize` command."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine_servers import POOL, once, tiny_checkpoint

REPO = Path(__file__).resolve().parents[2]
PROFILE = "fps: 2\nmax_pixels: 81920\nreasoning: false\n"


def quantize_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", "quantize", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@once
def _bf16_src() -> Path:
    src = POOL.mktemp("src") / "finetune"
    shutil.copytree(tiny_checkpoint(), src)
    (src / "cosmos-serve.yaml").write_text(PROFILE)
    return src


@once
def quantized() -> tuple[Path, dict]:
    """(DST, the --json summary); also what tests/quantize/test_serve_fp8.py's server serves,
    so the background thread that starts it may be the one that quantizes."""
    dst = POOL.mktemp("dst") / "finetune-fp8"
    r = quantize_cli(_bf16_src(), dst, "--json", "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    return dst, json.loads(r.stdout)


@pytest.fixture(scope="session")
def bf16_src(tiny_model: Path) -> Path:
    return _bf16_src()


@pytest.fixture(scope="session")
def fp8_run(bf16_src: Path) -> tuple[Path, dict]:
    """(DST, the --json summary)."""
    return quantized()
