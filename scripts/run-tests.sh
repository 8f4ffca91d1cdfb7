#!/usr/bin/env bash
# Set everything up and run the whole test suite under a virtual X display (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export QT_QPA_PLATFORM=xcb
export NAPARI_HCS_NUM_THREADS="${NAPARI_HCS_NUM_THREADS:-2}"
exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "$@"
