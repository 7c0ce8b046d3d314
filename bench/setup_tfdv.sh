#!/usr/bin/env bash
# Installs TensorFlow Data Validation into its own virtual environment, bench/.venv-tfdv
# (never into the project's environment). pip's resolver backtracks for a quarter of an
# hour over apache-beam / google-cloud pins; uv resolves the same set in about 30 s.
# TFDV's tfx-bsl imports dill, which current Beam no longer pulls in, so dill is added.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${TFDV_VENV:-$here/.venv-tfdv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --upgrade pip uv
"$venv/bin/python" -m uv pip install --python "$venv/bin/python" tensorflow-data-validation dill psutil
"$venv/bin/python" -c "import tensorflow_data_validation as t; print('TFDV', t.__version__)"
