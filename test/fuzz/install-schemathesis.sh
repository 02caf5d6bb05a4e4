#!/usr/bin/env bash
# Installs schemathesis (from PyPI) into a virtual environment cached outside the
# repository: ${GEF_CACHE_DIR:-~/.cache/gef}/schemathesis-venv. Idempotent: does nothing
# when the pinned version is there already. Prints the path of the `st` command.
set -euo pipefail

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
CACHE_DIR="${GEF_CACHE_DIR:-$HOME/.cache/gef}"
VENV="$CACHE_DIR/schemathesis-venv"
MARKER="$VENV/.installed-$SCHEMATHESIS_VERSION"
PYTHON="${PYTHON:-python3}"

if [ ! -f "$MARKER" ] || [ ! -x "$VENV/bin/st" ]; then
  echo "installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$CACHE_DIR"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2
  touch "$MARKER"
fi
echo "$VENV/bin/st"
