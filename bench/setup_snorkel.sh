#!/usr/bin/env bash
# Installs the weak-supervision anchor (snorkel 0.10.0) in its own venv, bench/.venv-snorkel,
# so it never touches the project's environment. Usage: bash bench/setup_snorkel.sh [python]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HERE/.venv-snorkel"
PYTHON="${1:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
# the pinned CPU wheel first: an unpinned torch pulls a multi-GB CUDA build
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q snorkel==0.10.0 duckdb pyarrow psutil
"$VENV/bin/python" -c "import snorkel, duckdb; print('snorkel', snorkel.__version__, 'in', '$VENV')"
