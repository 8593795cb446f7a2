#!/usr/bin/env bash
# The whole test suite: unit tests, CNI conformance and end-to-end tests on namespace labs.
# Usage (as root): ./scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -ra "$@" tests
