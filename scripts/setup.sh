#!/usr/bin/env bash
# One-shot, idempotent set-up of medvlp-bench.
#
#   bash scripts/setup.sh            # creates .venv and installs everything
#
# What it does (each step is skipped when already done):
#   1. creates a virtual environment in $MEDVLP_VENV (default: .venv);
#   2. installs torch 2.14.1 + torchvision 0.29.1;
#   3. builds mmcv 2.1.0 from its PyPI sdist (mmcv ships no wheels for this torch) in a
#      separate build environment with setuptools<70 (mmcv's setup.py imports pkg_resources),
#      --no-build-isolation and its C++ standard raised to C++20 (ATen needs it). Only its CPU
#      ops are built by default, on every machine: the harness runs segmentation and detection
#      on CUDA with them (measured on an H200), and the build takes about 13 min on 2 cores /
#      4.5 min on 16. MEDVLP_MMCV_CUDA=1 also builds the CUDA ops when nvcc and a GPU are
#      present (tens of minutes on a few cores; nothing in the harness needs them). The wheel
#      is cached in $MEDVLP_WHEEL_CACHE (default ~/.cache/medvlp-bench/wheels), one per
#      variant, so a machine builds it once;
#   4. installs the project with its pinned dependencies (pyproject.toml), OpenMMLab included,
#      in ONE resolver run together with the mmcv wheel (so pip never sees mmcv without its
#      requirements and prints no dependency-conflict error);
#   5. installs torchxrayvision with --no-deps: only its bundled official label files are
#      read (by tasks/build_manifests.py); the package is never imported.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
VENV="${MEDVLP_VENV:-$ROOT/.venv}"
CACHE="${MEDVLP_WHEEL_CACHE:-$HOME/.cache/medvlp-bench/wheels}"
TORCH_PIN="torch==2.14.1"
TORCHVISION_PIN="torchvision==0.29.1"
MMCV_VERSION="2.1.0"
MMCV_SDIST_URL="https://files.pythonhosted.org/packages/a7/19/f97f0fd4d432113a232e75f965335be6b7bb6557ae9faf8051e9a012cadd/mmcv-2.1.0.tar.gz"
MMCV_SDIST_SHA256="d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f"
TXRV_PIN="torchxrayvision==1.5.7"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# ---------------------------------------------------------------- 0. disk
# A fresh .venv takes about 6.9 GB (torch's CUDA build; measured 2026-12-01) and the tests
# write up to ~1 GB more; a full disk surfaces later as unrelated-looking failures.
if [ ! -x "$VENV/bin/python" ]; then
  FREE_KB=$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')
  if [ -n "$FREE_KB" ] && [ "$FREE_KB" -lt 8000000 ]; then
    say "WARNING: only $((FREE_KB / 1000000)) GB free on $(df -P "$ROOT" | awk 'NR==2 {print $6}'); set-up and tests need about 8 GB"
  fi
fi

# ---------------------------------------------------------------- 1. venv
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV ($("$PYTHON" --version))"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
MMCV_WHEEL=()  # set by step 3 when mmcv is not installed yet; installed with the project

# ---------------------------------------------------------------- 2. torch
if ! "$PY" -c "import torch, torchvision; assert torch.__version__.startswith('2.14.1') and torchvision.__version__.startswith('0.29.1')" 2>/dev/null; then
  say "installing $TORCH_PIN $TORCHVISION_PIN"
  "${PIP[@]}" install -q "$TORCH_PIN" "$TORCHVISION_PIN"
fi

# ---------------------------------------------------------------- 3. mmcv
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  say "mmcv $MMCV_VERSION already installed"
else
  VARIANT="cpu"
  FORCE_CUDA=0
  if [ "${MEDVLP_MMCV_CUDA:-0}" = "1" ]; then
    if command -v nvcc >/dev/null 2>&1 && "$PY" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
      VARIANT="cuda$("$PY" -c 'import torch; print(torch.version.cuda)')"
      FORCE_CUDA=1
    else
      say "MEDVLP_MMCV_CUDA=1 but nvcc or a CUDA GPU is missing: building mmcv's CPU ops only"
    fi
  fi
  PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  KEY="mmcv-${MMCV_VERSION}-torch2.14.1-${PYTAG}-${VARIANT}-$(uname -m)"
  WHEEL_DIR="$CACHE/$KEY"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    say "building mmcv $MMCV_VERSION ($VARIANT ops) once for this machine; cached in $WHEEL_DIR (about 10-15 min on 2 cores)"
    BUILD="$CACHE/.build-$KEY"
    rm -rf "$BUILD"; mkdir -p "$BUILD"
    # Build environment: its own setuptools<70, and torch taken from the project venv
    # through a .pth file (appended to sys.path, so the old setuptools wins).
    "$PY" -m venv "$BUILD/venv"
    BPY="$BUILD/venv/bin/python"
    "$VENV/bin/python" -c "import site; print('\n'.join(site.getsitepackages()))" > "$BUILD/venv/lib/$("$BPY" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')/site-packages/medvlp_torch.pth"
    "$BPY" -m pip install -q --disable-pip-version-check "setuptools<70" wheel ninja packaging
    "$BPY" - "$MMCV_SDIST_URL" "$BUILD/mmcv.tar.gz" "$MMCV_SDIST_SHA256" <<'PYEOF'
import hashlib, sys, urllib.request
url, dest, sha = sys.argv[1:]
with urllib.request.urlopen(url, timeout=300) as r, open(dest, "wb") as f:
    f.write(r.read())
digest = hashlib.sha256(open(dest, "rb").read()).hexdigest()
if digest != sha:
    sys.exit(f"mmcv sdist sha256 mismatch: {digest} != {sha}")
PYEOF
    tar -xzf "$BUILD/mmcv.tar.gz" -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$SRC/setup.py"
    grep -q -- '-std=c++20' "$SRC/setup.py" || { echo "could not raise mmcv's C++ standard"; exit 1; }
    # mmcv's setup.py compiles its CUDA kernels whenever torch sees a GPU, FORCE_CUDA=0 or not:
    # the CPU variant hides the GPU from the build.
    HIDE_GPU=()
    [ "$FORCE_CUDA" = "0" ] && HIDE_GPU=(CUDA_VISIBLE_DEVICES=)
    ( cd "$SRC" && env ${HIDE_GPU[@]+"${HIDE_GPU[@]}"} MMCV_WITH_OPS=1 FORCE_CUDA=$FORCE_CUDA MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        PATH="$BUILD/venv/bin:$PATH" "$BPY" -m pip wheel -q --no-build-isolation --no-deps -w "$BUILD/dist" . )
    mkdir -p "$WHEEL_DIR"
    mv "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/"
    rm -rf "$BUILD"
  fi
  MMCV_WHEEL=("$WHEEL_DIR"/mmcv-*.whl)
  say "mmcv $MMCV_VERSION: cached wheel ${MMCV_WHEEL[0]}"
fi

# ---------------------------------------------------------------- 4. project + pinned deps
say "installing medvlp-bench and its pinned dependencies"
"${PIP[@]}" install -q -e ".[test]" ${MMCV_WHEEL[@]+"${MMCV_WHEEL[@]}"}

# ---------------------------------------------------------------- 5. official label files
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('torchxrayvision') else 1)" 2>/dev/null; then
  say "installing $TXRV_PIN (--no-deps; only its data files are read)"
  "${PIP[@]}" install -q --no-deps "$TXRV_PIN"
fi

"$PY" -c "import torch, mmcv, mmdet, mmseg, mmengine; print('[setup] ok: torch', torch.__version__, '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__, '| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__)"
