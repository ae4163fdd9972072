#!/usr/bin/env bash
# The GPU check under its old name: scripts/gpu_check.py (no network; one GPU; PASS/FAIL lines
# with numbers; exit code 1 if any check failed). Options are passed on:
#
#   scripts/gpu_smoke.sh                         # on a GPU node
#   scripts/gpu_smoke.sh --dry-run               # the same checks on the CPU, tiny model
#   scripts/gpu_smoke.sh --model /models/Llama-3.2-1B-Instruct
#
# PYTHON: the interpreter with tif-unlearn installed (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" scripts/gpu_check.py "$@"
