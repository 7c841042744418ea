#!/usr/bin/env bash
# The project's test command: install into .venv, start services, lint, type-check, test.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k bridge -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n=== %s\n' "$*"; }

if [ ! -x .venv/bin/python ]; then
    stage "create .venv"
    python=$(command -v python3.11 || command -v python3) || {
        echo "no python3.11 or python3 on PATH" >&2
        exit 1
    }
    "$python" -m venv .venv
fi

stage "install jobexec[test] (constraints.txt)"
.venv/bin/pip install -q -c constraints.txt -e '.[test]'

stage "services: PostgreSQL, Redis"
bash scripts/services.sh

stage "browser: chromium (for the Flower and console tests, driven by Playwright)"
if ! command -v chromium >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q chromium >/dev/null
fi
chromium --version

stage "promtool (Debian's prometheus) for the alert rules"
if ! command -v promtool >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends \
        prometheus >/dev/null
fi
promtool check rules deploy/prometheus/jobexec-alerts.yml
promtool test rules deploy/prometheus/jobexec-alerts.test.yml

stage "ruff check"
.venv/bin/ruff check .

stage "ruff format --check"
.venv/bin/ruff format --check .

stage "mypy"
.venv/bin/mypy

stage "lint-imports (the layers in pyproject.toml)"
.venv/bin/lint-imports

stage "pytest"
# pytest's exit status stands, 5 (no tests collected) included.
exec .venv/bin/pytest tests/unit tests/fuzz tests/integration tests/e2e tests/chaos "$@"
