#!/usr/bin/env bash
# Installs schemathesis (from PyPI) into a virtual environment cached outside the
# repository (test/harness/python-venv.sh). Prints the path of the `st` command.
set -euo pipefail

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
VENV="$(bash "$(dirname "$0")/../harness/python-venv.sh" schemathesis "schemathesis==$SCHEMATHESIS_VERSION")"
echo "$VENV/bin/st"
