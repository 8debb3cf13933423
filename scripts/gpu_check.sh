#!/usr/bin/env bash
# The GPU checks in one command, on a machine with a CUDA GPU where `python3 -m viewclr` imports:
#
#   bash scripts/gpu_check.sh [OUT]            # OUT defaults to runs/gpu; PYTHON=... picks the interpreter
#
# 1. OUT/device.txt: torch, CUDA and cuDNN versions, the GPU's name, and the low-precision check of train.amp
#    (bf16 conv3d weight gradients against fp32; above 0.05 a bf16 run stops);
# 2. OUT/bench/bench.md (log: OUT/bench.log): `python -m benchmarks --device cuda` — S3D and the viewpoint generator
#    forward + backward and the MoCo and ViewCLR steps at the paper's settings (S3D ×1, batch 32, 32×128², bf16),
#    then both steps' rate with every GPU switch on and with each one off (each benchmark's own table in
#    OUT/bench/*.txt as soon as it ends);
# 3. OUT/demo (log: OUT/demo.log): `viewclr demo` trained on the GPU with its defaults there (bf16 autocast,
#    channels_last_3d, cuDNN's autotuner, fused Adam) — rendering, both stages of ViewCLR and InfoNCE, the probes
#    and the report, with WORKERS (8) loader processes — and its wall time in OUT/demo_seconds.txt.
#
# Each part has a time limit (BENCH_LIMIT, DEMO_LIMIT seconds: 330 and 240) so that a partial result still lands
# in OUT; the exit status is the first failing part's. Nothing is written before the CUDA check passes.
set -uo pipefail
OUT=${1:-runs/gpu}
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device is available to $PY (torch.cuda.is_available() is False)" >&2
    exit 1
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# the benchmarks sit beside the package, in the repository's root
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
status=0
"$PY" -c "import torch
print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, '
      f'{torch.cuda.get_device_name()}')
from viewclr.runtime import conv3d_gradient_error
error, frames = conv3d_gradient_error(torch.bfloat16, torch.device('cuda'))
print(f'bf16 conv3d weight gradient against fp32 (train.amp check): relative error {error:.2g}, worst at {frames} frames')
" | tee "$OUT/device.txt"
timeout "${BENCH_LIMIT:-330}" "$PY" -m benchmarks --device cuda --out "$OUT/bench" 2>&1 | tee "$OUT/bench.log"
status=${PIPESTATUS[0]}
start=$(date +%s)
timeout "${DEMO_LIMIT:-240}" "$PY" -m viewclr demo --no-progress --out "$OUT/demo" \
    "data.num_workers=${WORKERS:-8}" >"$OUT/demo.log" 2>&1
demo=$?
echo "$(($(date +%s) - start)) s, exit status $demo" | tee "$OUT/demo_seconds.txt"
tail -n 25 "$OUT/demo.log"
[ "$status" -ne 0 ] || status=$demo
exit "$status"
