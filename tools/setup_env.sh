#!/usr/bin/env bash
# Builds .venv with the OpenMMLab stack and mmdistkd (editable). Idempotent: a finished environment whose
# inputs did not change is left alone. The mmcv wheel (a 10-minute compile) is cached outside the repo,
# keyed by torch, CUDA and Python versions, because pip's own wheel cache ignores the torch it built against.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
CACHE=${MMDISTKD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmdistkd}
STAMP="$VENV/.mmdistkd-setup"

step() { echo; echo "==> [setup] $*"; }
fail() { echo "ERROR [setup]: $*" >&2; exit 1; }

inputs_hash=$(cat tools/setup_env.sh requirements/*.txt setup.py | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$inputs_hash" ]; then
    echo "[setup] $VENV is up to date."
    exit 0
fi

command -v "$PYTHON" >/dev/null || fail "$PYTHON not found. Install Python 3.11 or set PYTHON=/path/to/python3.11."

step "virtual environment $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || fail "could not create $VENV (is the venv module installed? apt-get install python3-venv)"
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -c requirements/constraints.txt)

step "build tools (setuptools<80, wheel, ninja)"
"${PIP[@]}" -q --upgrade pip setuptools wheel ninja psutil || fail "could not install build tools"

step "torch 2.14.1 + torchvision 0.29.1, numpy<2"
"${PIP[@]}" -q torch torchvision "numpy<2" || fail "could not install torch==2.14.1 / torchvision==0.29.1"

read -r TORCH_VER CUDA_TAG PY_TAG < <("$PY" - <<'PY'
import sys, torch
cuda = torch.version.cuda if torch.version.cuda and torch.cuda.is_available() else None
print(torch.__version__.replace('+', '_'), f"cu{cuda.replace('.', '')}" if cuda else 'cpu',
      f"cp{sys.version_info.major}{sys.version_info.minor}")
PY
) || fail "torch does not import"

step "mmengine 0.10.7"
"${PIP[@]}" -q mmengine || fail "could not install mmengine==0.10.7"

WHEEL_DIR="$CACHE/mmcv-2.1.0/torch-$TORCH_VER-$CUDA_TAG-$PY_TAG"
if ! ls "$WHEEL_DIR"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
    step "mmcv 2.1.0 with ops: compiling (about 10 minutes on 2 cores; cached in $WHEEL_DIR)"
    if [ "$CUDA_TAG" != cpu ] && command -v nvcc >/dev/null; then
        export FORCE_CUDA=1
        # This GPU's architecture only (torch's whole list compiles for hours); a list the user set wins.
        export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')}
        step "mmcv CUDA ops for TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
    else export FORCE_CUDA=0; fi
    mkdir -p "$WHEEL_DIR"
    build_log="$WHEEL_DIR/build.log"
    src_dir=$(mktemp -d)
    "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-build-isolation --no-binary :all: \
        -d "$src_dir" mmcv==2.1.0 >"$build_log" 2>&1 || { tail -20 "$build_log" >&2; fail "could not download the mmcv 2.1.0 source"; }
    tar xzf "$src_dir"/mmcv-2.1.0.tar.gz -C "$src_dir"
    # torch >= 2.10 headers require C++20; mmcv 2.1.0's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$src_dir"/mmcv-2.1.0/setup.py
    build_start=$SECONDS
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel --disable-pip-version-check \
        -c requirements/constraints.txt --no-deps --no-build-isolation \
        -w "$WHEEL_DIR" "$src_dir"/mmcv-2.1.0 >>"$build_log" 2>&1 \
        || { grep -m5 -B2 -A3 " error" "$build_log" >&2; fail "mmcv 2.1.0 did not compile; full log: $build_log"; }
    rm -rf "$src_dir"
    step "mmcv 2.1.0 compiled in $(( (SECONDS - build_start) / 60 ))m$(( (SECONDS - build_start) % 60 ))s (FORCE_CUDA=$FORCE_CUDA)"
else
    step "mmcv 2.1.0 from cache $WHEEL_DIR"
fi
"${PIP[@]}" -q "$WHEEL_DIR"/mmcv-2.1.0-*.whl || fail "could not install the cached mmcv wheel from $WHEEL_DIR (delete it to rebuild)"

step "mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0, pytest"
"${PIP[@]}" -q -r requirements/runtime.txt -r requirements/tests.txt || fail "could not install the OpenMMLab packages"

step "mmdistkd (editable, from setup.py)"
# A development install (egg-link), not PEP 660: see requirements/constraints.txt.
develop_log=$(mktemp)
"$PY" setup.py -q develop --no-deps >"$develop_log" 2>&1 \
    || { cat "$develop_log" >&2; fail "could not install mmdistkd in editable mode (setup.py develop)"; }
rm -f "$develop_log"

step "checking imports"
"$PY" - <<'PY' || fail "the environment was built but does not import; see the traceback above"
import mmcv.ops, mmdet, mmseg, mmpretrain, mmdistkd, torch
print(f"torch {torch.__version__}, mmcv {mmcv.__version__} (ops), mmdet {mmdet.__version__}, "
      f"mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}, mmdistkd {mmdistkd.__version__}")
PY
echo "$inputs_hash" > "$STAMP"
echo "[setup] done: $VENV"
