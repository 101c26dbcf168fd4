#!/usr/bin/env bash
# Set up .venv (with test dependencies) and run the whole test suite, the real-engine tests
# included. Extra arguments go to pytest, e.g. `bash deploy/test.sh -m "not engine"`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash deploy/setup.sh --test
exec .venv/bin/python -m pytest "$@"
