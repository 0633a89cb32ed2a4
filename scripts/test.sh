#!/usr/bin/env bash
# Set up and run the whole test suite: lint, type check, then pytest on SQLite and (when
# BROADCASTER_TEST_POSTGRES_URL is set) PostgreSQL. Installs what the tests need: the Python
# dev extras (Makefile) and Debian's chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing Debian chromium for the browser tests..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium is missing: run 'sudo apt-get install chromium chromium-driver' (browser tests will fail)" >&2
  fi
fi

# nginx serves the static copy in tests/staticsite (Debian's nginx-light is enough)
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = "0" ]; then
    echo "installing Debian nginx for the static publishing tests..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
  else
    echo "nginx is missing: run 'sudo apt-get install nginx-light' (static publishing tests will fail)" >&2
  fi
fi

export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
unset TWILIO_REGION TWILIO_EDGE || true

.venv/bin/ruff check src tests bench migrations setup.py
.venv/bin/mypy
# the layers and no-cycle contracts of .importlinter (docs/architecture.md)
.venv/bin/lint-imports --no-cache
set +e
# parallel worker processes (pytest-xdist; each has its own PostgreSQL database, SQLite files and ports):
# PYTEST_WORKERS=0 runs in this process; the slowest tests are listed at the end
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-auto}" --durations=25 "$@"
rc=$?
set -e
if [ "$rc" = "5" ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
