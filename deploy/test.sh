#!/usr/bin/env bash
# Set up .venv (with test dependencies) and run the whole test suite, the real-engine tests
# included. Extra arguments go to pytest, e.g. `bash deploy/test.sh -m "not engine"`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# The Debian packages the tests need install in the background while pip fills .venv: neither
# needs the other, apt waits on the network and disk, pip on one core. pytest waits for both.
# tests/eval opens the eval report in a real headless browser: Debian's chromium.
# tests/deploy runs Debian's Prometheus against the server and promtool on the alert rules.
debs() {
  apt-get update -qq
  if [ ! -x /usr/bin/chromium ]; then
    apt-get install -y -qq chromium >/dev/null
  fi
  if ! command -v promtool >/dev/null; then
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
}
apt_pid=
if { [ ! -x /usr/bin/chromium ] || ! command -v promtool >/dev/null; } \
    && command -v apt-get >/dev/null; then
  debs &
  apt_pid=$!
fi
bash deploy/setup.sh --test
if [ -n "$apt_pid" ]; then
  wait "$apt_pid" || { echo "[test] apt-get install of chromium/prometheus failed" >&2; exit 1; }
fi
exec .venv/bin/python -m pytest "$@"
