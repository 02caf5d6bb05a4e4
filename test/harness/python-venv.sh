#!/usr/bin/env bash
# Makes a Python virtual environment in the tool cache, outside the repository, with what
# pip installs from the arguments, and prints its path: ${GEF_CACHE_DIR:-~/.cache/gef}/NAME-venv.
# Idempotent: the environment is made again only when the arguments (or a requirements file
# they name with -r) change.
#   python-venv.sh NAME PIP_INSTALL_ARGUMENTS...
set -euo pipefail

NAME="$1"
shift
CACHE_DIR="${GEF_CACHE_DIR:-$HOME/.cache/gef}"
VENV="$CACHE_DIR/$NAME-venv"
PYTHON="${PYTHON:-python3}"

key="$({
  printf '%s\n' "$@"
  previous=''
  for arg in "$@"; do
    if [ "$previous" = -r ]; then cat "$arg"; fi
    previous="$arg"
  done
} | sha256sum | cut -c1-16)"
MARKER="$VENV/.installed-$key"

if [ ! -f "$MARKER" ]; then
  echo "installing $NAME into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$CACHE_DIR"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
  touch "$MARKER"
fi
echo "$VENV"
