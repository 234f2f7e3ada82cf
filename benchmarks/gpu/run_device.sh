#!/usr/bin/env bash
# One prepared call on the lent GPU machine (the `device` tool): the GPU benchmarks, then the
# gpu profile's heaviest chapter (08, cold model cache) on the carried CIFAR-10 subset.
#
# Prepare here first:  .venv/bin/python benchmarks/gpu/pack.py     (fills .device/, git-ignored)
# Device call:         command "bash benchmarks/gpu/run_device.sh", carry [".device"]
# Results come back under $OUT (8 files at most): gpu.txt, bench.log, results.json, RESULTS.md,
# chapter.log, the chapter's results JSON, its executed notebook and the runner's run.json.
#
# MODE=smoke instead runs the CUDA-only tests and the whole book's smoke profile on the GPU
# (every chapter with device=auto; pack with --mnist --n-train 6000): a check that every code
# path of the book runs on a GPU, not a timing.
#
# Knobs (environment): BUDGET seconds for the whole script (default 540), PYTHON (python3),
# CHAPTER (08), PROFILE (gpu), CHAPTER_SET (the runner's --set for the chapter, default
# 'datasets=[cifar10]': the carried data hold no MNIST; empty for a chapter without a datasets
# parameter, e.g. 06), BENCH_ARGS (extra run_all.py arguments), SKIP_BENCH=1 (chapter only),
# SKIP_PIP=1 where the
# packages are already importable (a rehearsal on the build machine).
set -u
T0=$(date +%s)
BUDGET=${BUDGET:-540}
PY=${PYTHON:-python3}
CHAPTER=${CHAPTER:-08}
PROFILE=${PROFILE:-gpu}
OUT=${OUT:?OUT must name the folder that comes back}
WORK=${WORK:-/tmp/freqkit-device}
mkdir -p "$OUT" "$WORK"
elapsed() { echo $(( $(date +%s) - T0 )); }

if [ "${SKIP_PIP:-0}" != 1 ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" .device/whl/*.whl \
    || { echo "wheel install failed" | tee "$OUT/gpu.txt"; exit 1; }
  export PYTHONPATH="$WORK/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 FREQKIT_DATA="$WORK/data" FREQKIT_CACHE="$WORK/cache" FREQKIT_OFFLINE=1 MPLBACKEND=Agg
$PY benchmarks/gpu/unpack.py .device/data "$WORK/data" || exit 1

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1
  $PY -c "import torch, sys; print('python', sys.version.split()[0], '| torch', torch.__version__, '| cuda',
torch.version.cuda, '|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
  nproc; echo "setup took $(elapsed) s"; } > "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"

if [ "${MODE:-bench}" = smoke ]; then
  timeout 120 $PY -m pytest -q -p no:cacheprovider tests -k "cuda or gpu" > "$OUT/pytest.log" 2>&1
  echo "cuda tests: exit $? after $(elapsed) s"; tail -n 5 "$OUT/pytest.log"
  timeout 60 $PY benchmarks/gpu/dct_paths.py > "$OUT/dct_paths.log" 2>&1; cat "$OUT/dct_paths.log"
  LEFT=$(( BUDGET - $(elapsed) - 10 ))
  timeout "$LEFT" $PY -m freqkit.book --profile smoke --no-build --out "$WORK/book" --set device=auto \
    --log-output --no-progress > "$OUT/chapter.log" 2>&1
  echo "smoke book on the GPU: exit $? after $(elapsed) s"; tail -n 30 "$OUT/chapter.log"
  cp "$WORK"/book/executed/smoke/run.json "$OUT/run.json" 2>/dev/null
  cp "$WORK"/book/results/smoke/09*.json "$OUT/" 2>/dev/null
  find "$WORK/book/executed/smoke/failed" -name "*.ipynb" -exec cp {} "$OUT/" \; 2>/dev/null
  ls -la "$OUT"; echo "total $(elapsed) s"
  exit 0
fi

DEV=$($PY -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
# The benchmarks get at most 40% of the budget; the training benchmark's checkpoint (the gpu
# preset's standard model) goes into the cache the chapter uses, so the chapter does not train it twice.
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  timeout $(( BUDGET * 2 / 5 )) $PY benchmarks/run_all.py --device "$DEV" --out "$WORK/bench" \
    --training-cache "$WORK/cache" ${BENCH_ARGS:-} > "$OUT/bench.log" 2>&1
  echo "benchmarks: exit $? after $(elapsed) s"; tail -n 40 "$OUT/bench.log"
  cp "$WORK/bench/results.json" "$WORK/bench/RESULTS.md" "$OUT/" 2>/dev/null
fi

LEFT=$(( BUDGET - $(elapsed) - 10 ))
echo "chapter $CHAPTER ($PROFILE profile, ${CHAPTER_SET-datasets=[cifar10]}) with ${LEFT} s left"
CHAPTER_SET=${CHAPTER_SET-datasets=[cifar10]}
timeout "$LEFT" $PY -m freqkit.book --profile "$PROFILE" --chapters "$CHAPTER" --no-build --out "$WORK/book" \
  ${CHAPTER_SET:+--set "$CHAPTER_SET"} --log-output --no-progress > "$OUT/chapter.log" 2>&1
echo "chapter: exit $? after $(elapsed) s"; tail -n 25 "$OUT/chapter.log"
cp "$WORK"/book/results/"$PROFILE"/*.json "$OUT/" 2>/dev/null
cp "$WORK"/book/executed/"$PROFILE"/run.json "$OUT/run.json" 2>/dev/null
find "$WORK/book/executed/$PROFILE/book" -name "${CHAPTER}*.ipynb" -exec cp {} "$OUT/" \; 2>/dev/null
ls -la "$OUT"
echo "total $(elapsed) s"
