#!/usr/bin/env bash
# Run the whole test suite: lint, type check, then pytest (extra arguments go to pytest).
#   bash scripts/test.sh                 everything
#   bash scripts/test.sh -m 'not slow'   pytest options pass through
# Every stage runs even when an earlier one fails; the exit status is non-zero if any failed.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

failed=()
echo "== ruff check ."
ruff check . || failed+=(ruff)
echo "== mypy"
mypy || failed+=(mypy)
echo "== pytest $*"
pytest "$@" || failed+=(pytest)

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "all passed"
