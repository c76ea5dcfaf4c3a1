#!/usr/bin/env bash
# Run HERE (a machine with PyPI), before a device session: downloads what
# bench/device/gpu_figures.sh installs on the lent GPU machine, which has no network.
#
#   bash bench/device/fetch_wheels.sh            # -> .whl/ (git-ignored; about 25 MB)
#   PYVER=3.11 bash bench/device/fetch_wheels.sh # other Python (a local dry run of gpu_figures.sh)
#
# .whl/*.whl          the packages of bench/device/wheels.txt, for CPython $PYVER on x86-64 Linux
# .whl/build/         mmcv 2.1.0's sdist (sha256-checked), setuptools<70 (mmcv's setup.py imports its
#                     pkg_resources) and wheel: gpu_figures.sh builds mmcv's CPU ops from them
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${DEST:-$ROOT/.whl}"
PYVER="${PYVER:-3.12}"
PY="${PYTHON:-python3}"
MMCV_SDIST_URL="https://files.pythonhosted.org/packages/a7/19/f97f0fd4d432113a232e75f965335be6b7bb6557ae9faf8051e9a012cadd/mmcv-2.1.0.tar.gz"
MMCV_SDIST_SHA256="d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f"

mkdir -p "$DEST/build"
rm -f "$DEST"/*.whl  # one version of each package: two stop the install there
PLATFORMS=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
  manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$tag")
done
grep -v -E '^\s*(#|$)' "$ROOT/bench/device/wheels.txt" > "$DEST/requirements.txt"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "$PYVER" --implementation cp "${PLATFORMS[@]}" -d "$DEST" -r "$DEST/requirements.txt"
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  -d "$DEST/build" "setuptools<70" "wheel==0.45.1"
if [ ! -f "$DEST/build/mmcv-2.1.0.tar.gz" ]; then
  "$PY" - "$MMCV_SDIST_URL" "$DEST/build/mmcv-2.1.0.tar.gz" <<'PYEOF'
import sys, urllib.request
url, dest = sys.argv[1:]
with urllib.request.urlopen(url, timeout=300) as response, open(dest, "wb") as f:
    f.write(response.read())
PYEOF
fi
echo "$MMCV_SDIST_SHA256  $DEST/build/mmcv-2.1.0.tar.gz" | sha256sum -c --quiet
echo "[fetch_wheels] $(ls "$DEST"/*.whl | wc -l) wheels for CPython $PYVER, mmcv sdist and setuptools in $DEST ($(du -sh "$DEST" | cut -f1))"
