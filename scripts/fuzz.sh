#!/usr/bin/env bash
# A longer fuzzing campaign than CI's: generated inventories and playbooks through
# `provision validate`, each must end in exit 0 or a file:line error within 5 s, never a traceback; nodes
# answering every fact with hostile output (plan and reset never break) and any input to the importers.
# Usage: ./scripts/fuzz.sh [EXAMPLES_PER_KIND]   (default 20000; about 1 minute per 1,000 on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
PROVISION_FUZZ_EXAMPLES="${1:-20000}" exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/unit/test_fuzz.py \
  tests/unit/test_fuzz_nodes.py
