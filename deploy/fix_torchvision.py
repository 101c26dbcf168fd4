"""Make PyPI's torchvision importable beside a CPU-only torch.

PyPI ships Linux torchvision as a CUDA build; its C extension links libtorch_cuda and fails to
load next to `torch+cpu`. torchvision then dies at import in `_meta_registrations.py`, which
registers fake kernels for C ops that were never defined (`operator torchvision::nms does not
exist`). Qwen2-VL's video processor only needs torchvision's pure-Python transforms, so we make
those registrations conditional on the ops having loaded, and remove torchcodec/torchaudio
(CUDA builds too, and imported opportunistically by transformers). Idempotent.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

MARK = "# cosmos-serve: fake kernels only when torchvision's C ops loaded"
SHIM = f'''
{MARK}
def _cosmos_register_fake(name):
    if torchvision.extension._has_ops():
        return torch.library.register_fake(name)
    return lambda fn: fn

'''


def patch_torchvision() -> str:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return "torchvision not installed"
    path = Path(list(spec.submodule_search_locations)[0]) / "_meta_registrations.py"
    src = path.read_text()
    if MARK in src:
        return "already patched"
    anchor = "import torchvision.extension  # noqa: F401\n"
    if anchor not in src:
        return "layout not recognised; left unchanged"
    src = src.replace(anchor, anchor + SHIM, 1)
    src = src.replace("@torch.library.register_fake(", "@_cosmos_register_fake(")
    path.write_text(src)
    return "patched"


def main() -> int:
    print("[setup] torchvision:", patch_torchvision())
    for pkg in ("torchcodec", "torchaudio"):
        if importlib.util.find_spec(pkg) is not None:
            subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", pkg], check=True)
            print(f"[setup] removed {pkg} (CUDA build; unusable with CPU torch)")
    check = subprocess.run([sys.executable, "-c", "import torchvision.transforms.v2"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        print(check.stderr[-2000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
