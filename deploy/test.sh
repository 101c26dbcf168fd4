#!/usr/bin/env bash
# Set up .venv (with test dependencies) and run the whole test suite, the real-engine tests
# included. Extra arguments go to pytest, e.g. `bash deploy/test.sh -m "not engine"`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash deploy/setup.sh --test
# tests/eval opens the eval report in a real headless browser: Debian's chromium.
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# tests/deploy runs Debian's Prometheus against the server and promtool on the alert rules.
if ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
