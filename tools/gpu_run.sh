#!/usr/bin/env bash
# Issue 19's one run on a machine with an NVIDIA GPU, from the repository root. That machine has CuPy,
# PyTorch for CUDA and pytest, but reaches no package registry, so what it lacks travels as wheels:
#   here:   make gpu-wheels                 (tools/gpu_wheels.txt into .whl/, git-ignored)
#   there:  bash tools/gpu_run.sh           (the device tool's run, carrying .whl)
# Each stage has its own time limit, so one hang cannot eat the rest; about seven minutes in all:
#   1. the benchmark on the GPU, alone (its timings)
#   2. where a training step's time goes on the GPU (tools/gpu_report.py)
#   3. the test suite, every `dev` test also on the real GPU, beside every notebook under nbdev-test,
#      the digits demo on the GPU and the NCCL check (tools/gpu_check_distributed.py)
#   4. a summary
# $OUT (gpu_out/ without it) gets four files, as the device tool brings back at most eight: summary.txt
# (the device, pass counts, failures on the GPU apart from the rest, the benchmark's ratios),
# results_cuda.json and ratios_cuda.png (for bench/results/), and logs.tar.gz (every log, junit.xml,
# the demo's pictures). `bash tools/gpu_run.sh --standin` runs the same stages briefly on the CPU, the
# stand-in GPU (tests/standin.py) answering `import cupy`: a rehearsal of this script, no figures.
set -u
OUT=${OUT:-$PWD/gpu_out}; LOG=$(mktemp -d); mkdir -p "$OUT"
PY=${PYTHON:-python3}
STANDIN=${1:-}
if [ -d .whl ] && [ -z "$STANDIN" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl || { echo "installing .whl failed"; exit 1; }
  export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
stage() { echo "== $1 ($(date -u +%T))"; }

stage environment
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  "$PY" tools/gpu_report.py env ${STANDIN:+--standin} 2>&1
  echo "cores: $(nproc)"; } > "$LOG/env.txt"
cat "$LOG/env.txt"

if [ -n "$STANDIN" ]; then  # the stand-in answers `import cupy` (tests/fake_gpu): one call of each
  # benchmark, two test files (their `dev` tests run on 'cuda' too, as on a GPU), one notebook
  export PYTHONPATH=$PWD/tests/fake_gpu:$PYTHONPATH
  BENCH="--device cuda --standin --quick"; TESTS="tests/test_standin.py tests/test_serialization.py"
  NBS="nbs/04_training.ipynb"; XDIST=""; SUFFIX=_standin_quick
else
  BENCH="--device cuda --rounds 9"; TESTS="tests"; NBS=""; XDIST="-n 10"; SUFFIX=_cuda
fi

stage benchmark
timeout 150 "$PY" bench/bench.py $BENCH --out "$LOG" > "$LOG/bench.log" 2>&1
echo "bench exit $?" >> "$LOG/bench.log"; tail -25 "$LOG/bench.log"

stage profile
timeout 60 "$PY" tools/gpu_report.py profile ${STANDIN:+--standin} > "$LOG/profile.log" 2>&1
echo "profile exit $?" >> "$LOG/profile.log"; cat "$LOG/profile.log"

stage "tests, notebooks, demo, NCCL"
# -v: a line per test, so that a run stopped at its limit (and so without junit.xml) is still counted
( timeout 270 "$PY" -m pytest -v -p no:cacheprovider $XDIST -r fE $TESTS \
    --ignore tests/test_docs_browser.py --ignore tests/test_lab_browser.py --junitxml "$LOG/junit.xml" \
    > "$LOG/tests.log" 2>&1; echo "tests exit $?" >> "$LOG/tests.log" ) &
( timeout 270 nbdev-test --n-workers 4 $NBS > "$LOG/notebooks.log" 2>&1
  echo "notebooks exit $?" >> "$LOG/notebooks.log" ) &
( timeout 120 "$PY" tools/demo.py "$LOG/demo" > "$LOG/demo.log" 2>&1; echo "demo exit $?" >> "$LOG/demo.log"
  timeout 60 "$PY" tools/gpu_check_distributed.py ${STANDIN:+--standin} > "$LOG/nccl.log" 2>&1
  echo "nccl exit $?" >> "$LOG/nccl.log" ) &
wait

stage summary
"$PY" tools/gpu_report.py summary "$LOG" "$SUFFIX" | tee "$OUT/summary.txt"
cp "$LOG/results$SUFFIX.json" "$LOG/ratios$SUFFIX.png" "$OUT"/ 2>/dev/null
tar -czf "$OUT/logs.tar.gz" -C "$LOG" . && echo "wrote $OUT: $(ls "$OUT" | tr '\n' ' ')"
