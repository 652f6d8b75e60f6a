#!/usr/bin/env bash
# Creates (or updates) the virtual environment with Python 3.10 and the pinned packages.
# Usage: scripts/make_venv.sh [VENV_DIR]      PYTHON=/path/to/python3.10 overrides the search.
set -euo pipefail
venv=${1:-.venv}
cd "$(dirname "$0")/.."

find_python() {
  # An explicit PYTHON, then python3.10 on PATH (pyenv resolves it through .python-version).
  for candidate in ${PYTHON:-} python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  if ! python=$(find_python); then
    cat >&2 <<'MSG'
error: Python 3.10 is required (TFX 1.16 supports Python 3.8 to 3.10) and none was found.
Install it, then run the command again, for example:
  pyenv install 3.10          (pyenv: this repo's .python-version selects it)
  sudo apt-get install python3.10 python3.10-venv
  uv python install 3.10      (then: PYTHON=$(uv python find 3.10) make ...)
or point PYTHON at an interpreter: PYTHON=/path/to/python3.10 make test
MSG
    exit 1
  fi
  echo "Creating $venv with $python ($("$python" --version))"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade "pip==24.2"
echo "Installing the pinned packages of requirements.lock into $venv (a few minutes the first time) ..."
"$venv/bin/python" -m pip install --quiet --requirement requirements.lock
"$venv/bin/python" -m pip check
