#!/usr/bin/env bash
# The GPU figures of the README, on a machine with CUDA, in one call of under 10 minutes: the 10-seed training
# benchmark on the GPU (bench/train_to_success.py --device cuda; seed 0 runs first, so on a fresh machine it pays
# torch.compile's cold cache, ~30 s on an H200) and, unless SKIP_THROUGHPUT=1, the simulator's throughput on CUDA.
# Writes into OUT_DIR (default runs/gpu_check): gpu.txt (device, torch), train_to_success_cuda.json and
# sim_throughput_cuda.json. Measured on an H200: ~45 s a seed, ~8 minutes for the ten.
#
#     [SEEDS="0 1 2"] [SKIP_THROUGHPUT=1] bench/gpu_check.sh [OUT_DIR]
set -u
cd "$(dirname "$0")/.."
out=${1:-runs/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])" | tee -a "$out/gpu.txt"
# shellcheck disable=SC2086  # SEEDS is a list
python3 bench/train_to_success.py --algos ppo --device cuda --max-seconds 60 --seeds ${SEEDS:-0 1 2 3 4 5 6 7 8 9} \
  --out-root /tmp/gpu_check_runs --out "$out/train_to_success_cuda.json" 2>&1 | tee -a "$out/gpu.txt"
[ "${SKIP_THROUGHPUT:-0}" = 1 ] && exit 0
timeout 150 python3 bench/sim_throughput.py --device cuda --processes 1 --repeats 3 --seconds 2 \
  --modes eager compile --batches 4096 65536 --out "$out/sim_throughput_cuda.json" 2>&1 | tee -a "$out/gpu.txt"
