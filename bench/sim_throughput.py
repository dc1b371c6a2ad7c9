"""Environment steps per second of the batched quadrotor environment, eager and torch.compile.

The full step counts: dynamics, observations for both groups with noise, reward terms, termination and the
automatic resets with domain randomization. Prints a table and writes JSON (median over repeats).

    python bench/sim_throughput.py [--batches 1 64 1024 4096 16384] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402


def measure(num_envs: int, compile: bool, repeats: int, device: str, seconds: float) -> dict:
    env = QuadrotorEnv(num_envs=num_envs, device=device, seed=0, compile=compile)
    env.reset()
    gen = torch.Generator(device=device).manual_seed(0)
    actions = [torch.rand((num_envs, 4), generator=gen, device=device) * 2 - 1 for _ in range(16)]
    t0 = time.perf_counter()
    for i in range(20):  # warm-up (and compilation)
        env.step(actions[i % 16])
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds / 4 or n < 10:
        env.step(actions[n % 16])
        n += 1
    steps_per_rep = max(10, int(n * 4 * seconds / (time.perf_counter() - t0) / repeats / 4))
    rates = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps_per_rep):
            env.step(actions[i % 16])
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append(steps_per_rep * num_envs / (time.perf_counter() - t0))
    mode = "compile" if compile else "eager"
    return {"num_envs": num_envs, "mode": mode, "env_steps_per_s": statistics.median(rates),
            "min": min(rates), "max": max(rates), "repeats": repeats, "steps_per_repeat": steps_per_rep,
            "warmup_s": warmup_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 4096, 16384])
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"], choices=["eager", "compile"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="approximate measuring time per cell")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sim_throughput.json")
    args = parser.parse_args()

    rows = []
    print(f"{'num_envs':>9} {'mode':>8} {'env-steps/s (median)':>22} {'min':>12} {'max':>12}")
    for batch in args.batches:
        for mode in args.modes:
            row = measure(batch, mode == "compile", args.repeats, args.device, args.seconds)
            rows.append(row)
            print(f"{batch:>9} {mode:>8} {row['env_steps_per_s']:>22,.0f} {row['min']:>12,.0f} {row['max']:>12,.0f}",
                  flush=True)
    result = {
        "benchmark": "sim_throughput", "device": args.device, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "processor": platform.processor(), "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
