#!/usr/bin/env bash
# Set up, then show aurora-sync on throwaway local databases (python -m sync.dev.demo --help).
#   bash scripts/demo.sh           run the demo and stop its servers
#   bash scripts/demo.sh --keep    leave the servers running and print the env file to use
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"

python -m sync.dev.demo "$@"
