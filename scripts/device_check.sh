#!/usr/bin/env bash
# One short GPU pass over the checks that need CUDA, for a machine whose python already has CUDA torch, lightning,
# einops, safetensors, tqdm and pytest (no `make setup` there). About 5 minutes on an H100 / H200.
#
#   bash scripts/device_check.sh [OUT_DIR]        (default: outputs/device; JSON lines and logs land there)
#
# 1. `pytest -m gpu` over the core: every fused SDPA kernel (flash, cuDNN, memory-efficient) against the math
#    reference, the DiT on the GPU against the CPU, bf16 training, compiled blocks.
# 2. benchmarks/core_dit.py at DiT-B width on 1024 tokens (ditkit vs diffusers' DiT vs the kernel floor, fp32 and
#    bf16, QK-norm on and off, compiled blocks) and the bf16 MFU line of DiT-B.
# 3. benchmarks/attention.py: time and peak memory per backend at 1k / 4k / 16k tokens.
#
# The diffusers peer is timed only where `import diffusers` works; carry its wheel (and importlib_metadata's) when
# the machine lacks it and put it on PYTHONPATH before running this script. Without CUDA the script still runs every
# step on the CPU (the GPU tests skip), which is how it is checked.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT_DIR=${1:-outputs/device}
mkdir -p "$OUT_DIR"
export PYTHONPATH="packages/core/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
rc=0

"$PY" - <<'EOF' | tee "$OUT_DIR/device.json"
import json, platform, torch
cuda = torch.cuda.is_available()
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name() if cuda
                  else platform.processor() or platform.machine(), "cudnn": torch.backends.cudnn.version() if cuda else None}))
EOF

"$PY" -m pytest -q -p no:cacheprovider -o addopts="--import-mode=importlib -ra" -m gpu tests/core/test_core_gpu.py \
    tests/core/test_core_attention.py 2>&1 | tee "$OUT_DIR/test_gpu.log" || rc=1

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    SIZE=(--tokens 1024 --dim 768 --depth 12 --heads 12 --batch 16 --rounds 10)
else
    SIZE=(--tokens 64 --dim 64 --depth 2 --heads 2 --batch 2 --rounds 3)
fi
"$PY" benchmarks/core_dit.py "${SIZE[@]}" --compile 2>&1 | tee "$OUT_DIR/core_dit.jsonl" || rc=1
"$PY" benchmarks/attention.py --sizes 1024 4096 16384 2>&1 | tee "$OUT_DIR/attention.jsonl" || rc=1
echo "device_check: exit $rc; results in $OUT_DIR"
exit $rc
