#!/usr/bin/env bash
# Run ON THE LENT GPU MACHINE (no network; Python 3.12 with torch 2.11 preinstalled), in ONE
# device call, after `bash bench/device/fetch_wheels.sh` here:
#
#   run(command="bash bench/device/gpu_figures.sh", carry=[".whl"], timeout_s=600)
#
# It measures what issue 16 asks on a GPU and writes each script's output under $OUT:
#   0. nvidia-smi and the versions, into summary.log (with one line per phase);
#   1. installs .whl/*.whl into .device/site (no index, no deps: bench/device/wheels.txt);
#   2. builds mmcv 2.1.0's CPU ops from the carried sdist into .device/site. The GPU is hidden
#      from mmcv's setup.py (CUDA_VISIBLE_DEVICES=), which otherwise compiles every CUDA kernel
#      whenever torch sees a GPU; the harness needs none of them (about 4.5 min on 16 cores);
#   3. the bench scripts, each under a time limit that keeps the call inside $BUDGET_S:
#      suite_time --quick, pretraining_throughput (its CUDA defaults: real sizes, batch 72, bf16,
#      30 steps), batched_probe
#      (real sizes, batched mode), suite_time at full length.
# .device/ is git-ignored and survives between calls while the machine stays warm, so a second
# call skips the finished phases and benches (markers in .device/done/). The project runs from
# the checkout through PYTHONPATH (installing it would replace the machine's torch).
#
# Dry run on a machine without a GPU: DEVICE=cpu OUT=/tmp/out bash bench/device/gpu_figures.sh
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
BUDGET_S="${BUDGET_S:-570}"
OUT="${OUT:-$ROOT/.device/out}"
STATE="$ROOT/.device"
SITE="$STATE/site"
DONE="$STATE/done"
mkdir -p "$OUT" "$SITE" "$DONE"
export PYTHONUNBUFFERED=1
STARTED=$(date +%s)
elapsed() { echo $(( $(date +%s) - STARTED )); }
say() { printf '[gpu_figures %4ss] %s\n' "$(elapsed)" "$*" | tee -a "$OUT/summary.log"; }

say "device $DEVICE, budget ${BUDGET_S}s, $(nproc) cores, $("$PY" --version 2>&1)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  | sed 's/^/[gpu] /' | tee -a "$OUT/summary.log"

# ------------------------------------------------------------------ 1. carried wheels
if [ ! -f "$DONE/wheels" ]; then
  ls .whl/*.whl >/dev/null 2>&1 || { say "no .whl/*.whl: run bash bench/device/fetch_wheels.sh here and carry .whl"; exit 2; }
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl >>"$OUT/summary.log" 2>&1 || { say "installing the carried wheels failed"; exit 1; }
  touch "$DONE/wheels"
  say "installed $(ls .whl/*.whl | wc -l) carried wheels into $SITE"
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"

# ------------------------------------------------------------------ 2. mmcv, CPU ops only
if ! "$PY" -c "import mmcv.ops" >/dev/null 2>&1; then
  say "building mmcv 2.1.0 (CPU ops, MAX_JOBS=$(nproc))"
  BUILD="$STATE/mmcv-build"
  rm -rf "$BUILD" && mkdir -p "$BUILD"
  tar -xzf .whl/build/mmcv-2.1.0.tar.gz -C "$BUILD"
  sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$BUILD/mmcv-2.1.0/setup.py"  # ATen's headers need C++20
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --target "$BUILD/tools" \
    .whl/build/setuptools-*.whl .whl/build/wheel-*.whl >>"$OUT/summary.log" 2>&1
  if ! (cd "$BUILD/mmcv-2.1.0" && CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
      PYTHONPATH="$BUILD/tools:$PYTHONPATH" "$PY" -m pip wheel -q --disable-pip-version-check --no-index \
      --no-build-isolation --no-deps -w "$BUILD/dist" . >"$OUT/mmcv_build.log" 2>&1); then
    say "mmcv build failed; the end of its log:"; tail -25 "$OUT/mmcv_build.log"; exit 1
  fi
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --target "$SITE" "$BUILD"/dist/mmcv-*.whl \
    >>"$OUT/summary.log" 2>&1 || { say "installing the mmcv wheel failed"; exit 1; }
  rm -f "$OUT/mmcv_build.log"
  say "mmcv built"
fi
"$PY" -c "import torch, mmcv, mmcv.ops, mmengine, mmdet, mmseg, diffusers, transformers; print('[versions] torch', \
torch.__version__, '| cuda', torch.cuda.is_available(), '| mmcv', mmcv.__version__, '| mmengine', mmengine.__version__, \
'| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| transformers', transformers.__version__)" \
  2>&1 | tail -3 | tee -a "$OUT/summary.log"

# ------------------------------------------------------------------ 3. the bench scripts
# bench NAME SECONDS COMMAND...: runs COMMAND under min(SECONDS, what the budget has left).
bench() {
  local name="$1" want="$2"; shift 2
  if [ -f "$DONE/$name" ]; then say "$name: done in an earlier call"; return; fi
  local left=$(( BUDGET_S - $(elapsed) - 5 ))
  local limit=$(( want < left ? want : left ))
  if [ "$limit" -lt 30 ]; then say "$name: skipped, ${left}s of the budget left"; return; fi
  say "$name: up to ${limit}s"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  if [ "$rc" -eq 0 ]; then touch "$DONE/$name"; fi
  say "$name: exit $rc after $(( $(date +%s) - STARTED ))s total (124: its time limit)"
}
bench suite_time_quick 200 "$PY" bench/suite_time.py --device "$DEVICE" --quick --json "$OUT/suite_time_quick.json"
bench pretraining_throughput 120 "$PY" bench/pretraining_throughput.py --device "$DEVICE" ${SIZE:+--size "$SIZE"}
bench batched_probe 150 "$PY" bench/batched_probe.py --device "$DEVICE" --scale "${PROBE_SCALE:-1.0}" --modes batched
bench suite_time 600 "$PY" bench/suite_time.py --device "$DEVICE" --json "$OUT/suite_time.json"
say "finished; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
