#!/usr/bin/env bash
# The GPU half of the benchmarks as one prepared script, for the times a GPU machine is lent (its device
# time is short, so every piece has its own timeout and writes its JSON as soon as it has it).
#
#   OUT=/tmp/gpu bash benchmarks/gpu_suite.sh        # from the repository root, on the GPU machine
#
# That machine has torch and transformers but no registry: packages it lacks (datasets, ...) or has at
# other versions travel as wheels in .whl/ (see /work/.library/device/README.md) and go first on the path.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_suite}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch, transformers, datasets; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__)"

step() { echo "=== $1 ($(date +%T))"; }
step "optimizer step, T5-small parameters"
timeout 120 python3 benchmarks/optimizer_step.py --device cuda --out "$OUT/optimizer_step_cuda.json" 2>&1 | grep -v Warning | tail -15
step "paper config: recipe vs hand loop, before and after"
timeout 420 python3 benchmarks/paper_pretrain_gpu.py --steps 150 --warmup 20 --rounds 2 \
    --variants hand_after,after,before,hand_before --out "$OUT/paper_pretrain_gpu.json" 2>&1 \
    | grep -E "^(\||---|->|Traceback|  File|[A-Za-z]*Error)" | tail -30
step "tiny T5 (per-step overhead): recipe vs stock Trainer vs hand loop"
timeout 150 python3 benchmarks/train_throughput.py --device cuda --sizes tiny --steps 150 --warmup 20 --repeats 2 \
    --rss_batches 0 --threads 8 --out "$OUT/train_throughput_cuda.json" 2>&1 | grep -E "^(\||---|padding|results|Traceback|  File|[A-Za-z]*Error)"
step "paper config under torch.compile"
timeout 200 python3 benchmarks/paper_pretrain_gpu.py --steps 150 --warmup 50 --rounds 1 --variants compile \
    --out "$OUT/paper_pretrain_gpu_compile.json" 2>&1 | grep -E "^(\||---|->|Traceback|  File|[A-Za-z]*Error)" | tail -20
step "done"
