#!/usr/bin/env bash
# Build freqkit's wheel and, in a fresh venv with only its core dependencies (no book, no
# attack extras), import freqkit and run the public contract of DESIGN.md (.ci/core_contract.py).
# Proves `pip install freqkit` works without a book toolchain.  Used by .ci/run and `make wheel-check`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PY:-.venv/bin/python}"
PYTHON="${PYTHON:-python3}"
rm -rf dist .venv-core
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w dist .
"$PYTHON" -m venv .venv-core
.venv-core/bin/python -m pip install --quiet dist/freqkit-*.whl
.venv-core/bin/python -m pip list --format=freeze | grep -iE "^(freqkit|torch|captum|jupyter-book|papermill|matplotlib)=" || true
.venv-core/bin/python .ci/core_contract.py
