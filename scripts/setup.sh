#!/usr/bin/env bash
# Create .venv if it is missing and install camabc with its dev and synth extras into it.
#
# torch goes in first, pinned. An importable torch in .venv is kept, so install the build you need
# (CPU or CUDA) before running this script. Running it again reinstalls camabc only when
# pyproject.toml has changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TORCH_REQUIREMENT="torch==2.13.0"
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi

if .venv/bin/python -c "import torch" 2>/dev/null; then
    echo "Keeping torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') from .venv"
else
    .venv/bin/python -m pip install "$TORCH_REQUIREMENT"
fi

stamp=.venv/.camabc-pyproject.sha256
fingerprint=$(.venv/bin/python -c \
    "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read()).hexdigest())")
if [ -x .venv/bin/camabc ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
    echo "camabc is installed in .venv and pyproject.toml is unchanged"
else
    .venv/bin/python -m pip install -e '.[dev,synth]'
    echo "$fingerprint" > "$stamp"
fi
