# Sourced by the launch scripts. MMDISTKD_ROOT: the checkout these tools belong to. PYTHON: the interpreter
# they run, unless set: the project's environment (.venv, built by `make setup`) when it exists, else the
# `python` on PATH (which must have torch and the OpenMMLab packages).
MMDISTKD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$MMDISTKD_ROOT/.venv/bin/python" ]; then
        PYTHON="$MMDISTKD_ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi
