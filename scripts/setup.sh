#!/usr/bin/env bash
# Set up napari-hcs in a virtual environment at .venv (idempotent).
#   bash scripts/setup.sh          # the library, CLI and viewer
#   bash scripts/setup.sh --test   # and what the test suite needs (Xvfb, pytest-qt, ...)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# python3 -m venv needs Debian's python3-venv where python3 is the system Python.
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  python3 -m venv .venv
fi

if [ "$want_test" = 1 ]; then
  missing=()
  while read -r pkg; do
    [ -z "$pkg" ] || [ "${pkg#\#}" != "$pkg" ] && continue
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < scripts/system-packages.txt
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "Installing system packages: ${missing[*]}"
    apt_install "${missing[@]}"
  fi
fi

pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# torch first, pinned to the CPU build these machines carry: an unpinned torch pulls CUDA.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  "${pip[@]}" install "torch==2.13.0"
fi

extras="embed"
[ "$want_test" = 1 ] && extras="embed,test"
stamp=".venv/.napari-hcs-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "${pip[@]}" install -e ".[$extras]"
  touch "$stamp"
fi
