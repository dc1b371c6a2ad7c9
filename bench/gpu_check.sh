#!/usr/bin/env bash
# The GPU figures of the README, on a machine with CUDA: the training command of the 10-seed benchmark on the GPU
# (seed 0, cold compile cache then warm) and the simulator's throughput on CUDA. Writes into OUT_DIR (default
# runs/gpu_check): gpu.txt (device, wall-clock and exit code of each run), summary-cold/warm.json, train-*.log and
# sim_throughput_cuda.json.
#
#     bench/gpu_check.sh [OUT_DIR]
set -u
cd "$(dirname "$0")/.."
out=${1:-runs/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch, sys; print('torch', torch.__version__, 'python', sys.version.split()[0])" | tee -a "$out/gpu.txt"
for run in cold warm; do  # "cold" is cold only on a machine that never compiled robot_ac
  limit=$([ $run = cold ] && echo 220 || echo 130)
  start=$(date +%s.%N)
  timeout $limit python3 -m robot_ac.cli train quadrotor-hover --until-success --device cuda --seed 0 \
    --max-seconds 180 --out "$out/ppo-$run" > "$out/train-$run.log" 2>&1
  rc=$?
  echo "$run rc=$rc wall_s=$(python3 -c "import time; print(round(time.time() - $start, 1))")" | tee -a "$out/gpu.txt"
  cp "$out/ppo-$run/summary.json" "$out/summary-$run.json" 2>/dev/null
  [ $rc -le 1 ] || break
done
timeout 150 python3 bench/sim_throughput.py --device cuda --processes 1 --repeats 3 --seconds 2 \
  --modes eager compile --batches 4096 65536 --out "$out/sim_throughput_cuda.json" 2>&1 | tee -a "$out/gpu.txt"
