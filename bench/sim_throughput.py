"""Environment steps per second of the batched quadrotor environment: eager, compiled, and compiled by inductor.

The full step counts: dynamics, observations for both groups with noise, reward terms, termination and the
automatic resets with domain randomization. Prints a table and writes JSON (median over repeats).
``compile`` is what ``QuadrotorEnv(compile=True)`` runs: on a CPU the fused C step
(robot_ac/sim/quadrotor/native_step.c); ``inductor`` is the torch step compiled by ``torch.compile``, which
is what runs on CUDA and on a CPU without a working C compiler.

Two context rows per batch size, not part of the target: ``dynamics`` is the compiled RK4 alone (what the
issue's single-threaded C++ reference, ~6M dynamics steps/s here, measures), and ``copy floor`` is the rate at
which this machine can merely write the step's outputs (observations to act on for both groups, new state and
history), measured as a tensor copy of the same number of bytes.

    python bench/sim_throughput.py [--batches 1 64 1024 4096 16384] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Run alone on a quiet machine with threads = cores: OpenMP workers may spin between the many parallel loops of
# the compiled step (PASSIVE sleeps at each barrier and measured 2.6x slower at N = 4096 here). Anything else
# running makes spinning workers steal its cores: then pass OMP_WAIT_POLICY=PASSIVE.
os.environ.setdefault("OMP_WAIT_POLICY", "ACTIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_timing import machine_probe  # noqa: E402  (beside this script)

from robot_ac.compiler import compile_function  # noqa: E402
from robot_ac.sim.quadrotor import dynamics  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402


def _rate(step: Callable[[int], object], num_envs: int, repeats: int, device: str, seconds: float) -> dict:
    """Median env-steps/s of ``step(i)`` over ``repeats`` timed blocks, after a warm-up (and compilation)."""
    t0 = time.perf_counter()
    for i in range(20):
        step(i)
    warmup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds / 4 or n < 10:
        step(n)
        n += 1
    steps_per_rep = max(10, int(n * 4 * seconds / (time.perf_counter() - t0) / repeats / 4))
    rates = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps_per_rep):
            step(i)
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append(steps_per_rep * num_envs / (time.perf_counter() - t0))
    return {"env_steps_per_s": statistics.median(rates), "min": min(rates), "max": max(rates), "repeats": repeats,
            "steps_per_repeat": steps_per_rep, "warmup_s": warmup_s}


def _random_actions(num_envs: int, device: str) -> list[torch.Tensor]:
    gen = torch.Generator(device=device).manual_seed(0)
    return [torch.rand((num_envs, 4), generator=gen, device=device) * 2 - 1 for _ in range(16)]


def measure(num_envs: int, compile: bool, repeats: int, device: str, seconds: float) -> dict:
    env = QuadrotorEnv(num_envs=num_envs, device=device, seed=0, compile=compile)
    env.reset()
    actions = _random_actions(num_envs, device)
    row = _rate(lambda i: env.step(actions[i % 16]), num_envs, repeats, device, seconds)
    return {"num_envs": num_envs, "mode": "compile" if compile else "eager", **row}


def measure_dynamics(num_envs: int, repeats: int, device: str, seconds: float) -> dict:
    """The compiled RK4 step alone, on the environment's own state layout and parameters."""
    env = QuadrotorEnv(num_envs=num_envs, device=device, seed=0)
    env.reset()
    body, rotors, robot = env.params.body_columns(), env.rotors.constants(), env.robot

    def integrate(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        rpm = robot.rpm_min + (action.T + 1.0) * (0.5 * (robot.rpm_max - robot.rpm_min))
        return torch.stack(dynamics.rk4_columns(list(state.unbind(0)), list(rpm.unbind(0)), env.dt,
                                                env.task.substeps, body, rotors, robot.gravity))

    compiled = compile_function(integrate, dynamic=False)
    actions = _random_actions(num_envs, device)
    state = env.state.T.contiguous()
    row = _rate(lambda i: compiled(state, actions[i % 16]), num_envs, repeats, device, seconds)
    return {"num_envs": num_envs, "mode": "dynamics", **row}


def measure_copy_floor(num_envs: int, repeats: int, device: str, seconds: float) -> dict:
    """Env-steps/s at which this machine can only write the bytes a full step outputs (a tensor copy)."""
    env = QuadrotorEnv(num_envs=num_envs, device=device, seed=0)
    # the observations to act on (final observations are written only where an episode ended, a few per cent)
    floats = sum(env.observation_size(g) for g in env.contract.groups)
    floats += 17 + env.history[0].numel()
    source = torch.rand(num_envs, floats, device=device)
    target = torch.empty_like(source)
    row = _rate(lambda i: target.copy_(source), num_envs, repeats, device, seconds)
    return {"num_envs": num_envs, "mode": "copy floor", "bytes_per_step": 4 * floats * num_envs, **row}


def measure_cell(batch: int, mode: str, args: argparse.Namespace) -> dict:
    if mode == "dynamics":
        return measure_dynamics(batch, args.repeats, args.device, args.seconds)
    if mode == "copy floor":
        return measure_copy_floor(batch, args.repeats, args.device, args.seconds)
    row = measure(batch, mode in ("compile", "inductor"), args.repeats, args.device, args.seconds)
    return dict(row, mode=mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64, 1024, 4096, 16384])
    parser.add_argument("--modes", nargs="+", default=["eager", "compile", "inductor", "dynamics", "copy floor"],
                        choices=["eager", "compile", "inductor", "dynamics", "copy floor"],
                        help="compile: what compile=True runs (on a CPU the fused C step); inductor: the torch step "
                             "compiled by torch.compile (the CUDA path, and the CPU's without a C compiler)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per cell; the table shows the "
                        "median over processes (each process's own median over repeats) and the min/max of all")
    parser.add_argument("--seconds", type=float, default=4.0, help="approximate measuring time per cell")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cell", nargs=2, metavar=("NUM_ENVS", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sim_throughput.json")
    args = parser.parse_args()

    if args.cell:
        if args.cell[1] == "inductor":
            os.environ["ROBOT_AC_NATIVE_STEP"] = "0"
        print(json.dumps(measure_cell(int(args.cell[0]), args.cell[1], args)))
        return
    rows = []
    probe_before = machine_probe()
    print(f"{'num_envs':>9} {'mode':>10} {'env-steps/s (median)':>22} {'min':>12} {'max':>12}")
    for batch in args.batches:
        for mode in args.modes:
            # Each cell in several fresh processes: on this VM the same compiled step runs at 1.3M or 2.5M
            # env-steps/s depending on the process (memory placement), while repeats within one process agree.
            cmd = [sys.executable, __file__, "--cell", str(batch), mode, "--repeats", str(args.repeats),
                   "--seconds", str(args.seconds), "--device", args.device]
            runs = [json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                               .strip().splitlines()[-1]) for _ in range(args.processes)]
            row = dict(runs[0], env_steps_per_s=statistics.median(r["env_steps_per_s"] for r in runs),
                       min=min(r["min"] for r in runs), max=max(r["max"] for r in runs),
                       per_process=[r["env_steps_per_s"] for r in runs])
            rows.append(row)
            print(f"{batch:>9} {mode:>10} {row['env_steps_per_s']:>22,.0f} {row['min']:>12,.0f} {row['max']:>12,.0f}",
                  flush=True)
    result = {
        "benchmark": "sim_throughput", "device": args.device, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "processor": platform.processor(), "machine_probe": {"before": probe_before, "after": machine_probe()},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
