"""A/B of fused C step sources in one process: env-steps/s of each, and their ratio to the first.

Why: this VM's speed drifts by up to 2x within an hour, so two runs of ``sim_throughput.py`` cannot show a 10% change.
Here every source gets its own library and environment, and blocks of steps alternate between them. Every step is
timed on its own: the figures are quantiles of those times (the median, and the 10th percentile, which the VM's
neighbours disturb least), and the ratios are those of each source's quantile to the first's. Sources are C files
with ``native_step.c``'s interface (e.g. an older revision from ``git show REV:robot_ac/sim/quadrotor/native_step.c``).

    python bench/native_step_ab.py old=/tmp/old_step.c new=robot_ac/sim/quadrotor/native_step.c [--num-envs 4096]

A source may bring its own header generator (an older ``native.py``) after a comma: ``old=/tmp/old.c,/tmp/old.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import time
from pathlib import Path
from types import ModuleType
from unittest import mock

import torch

from robot_ac.sim.quadrotor import env as env_module
from robot_ac.sim.quadrotor import native
from robot_ac.sim.quadrotor.env import QuadrotorEnv


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load a header generator from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="NAME=PATH[,NATIVE_PY] of a step source (and the native.py "
                        "that generates its header); the first is the reference")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per source and round")
    parser.add_argument("--out", type=Path, default=Path("bench/results/native_step_ab.json"))
    args = parser.parse_args()
    sources = dict(item.split("=", 1) for item in args.sources)
    envs = {}
    for name, spec in sources.items():
        path, _, generator_path = spec.partition(",")
        module = _load_module(Path(generator_path), f"native_{name}") if generator_path else native
        default = module.SOURCE
        try:
            module.SOURCE = Path(path)  # library_for reads the source from here and names the library by its digest
            with mock.patch.object(env_module, "native_step", module.native_step):
                envs[name] = QuadrotorEnv(num_envs=args.num_envs, device="cpu", seed=0, compile=True)
            if not envs[name].uses_native_step:
                raise SystemExit(f"{name}: {path} did not build (the environment fell back to the torch step)")
            envs[name].reset(seed=0)
        finally:
            module.SOURCE = default
    generator = torch.Generator().manual_seed(0)
    actions = [torch.rand(args.num_envs, 4, generator=generator) * 2 - 1 for _ in range(16)]  # random commands
    times: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(args.rounds):
        for name, env in envs.items():
            commands = itertools.cycle(actions)
            for _ in range(20):  # bring this environment's buffers back into the caches after the other's round
                env.step(next(commands))
            for _ in range(args.steps):
                start = time.perf_counter()
                env.step(next(commands))
                times[name].append(time.perf_counter() - start)
    quantiles = {name: {q: _quantile(values, q) for q in (0.1, 0.25, 0.5)} for name, values in times.items()}
    reference = next(iter(times))
    rows = []
    print(f"{'source':>10} {'env-steps/s (median step)':>26} {'(p10 step)':>12} {'ratio to ' + reference:>16}"
          f" {'(p10)':>7}")
    for name, q in quantiles.items():
        ratio, ratio10 = quantiles[reference][0.5] / q[0.5], quantiles[reference][0.1] / q[0.1]
        rows.append({"source": name, "path": sources[name], "env_steps_per_s": args.num_envs / q[0.5],
                     "env_steps_per_s_p10_step": args.num_envs / q[0.1], "step_us": {f"p{round(k * 100)}": v * 1e6
                                                                                       for k, v in q.items()},
                     "ratio_to_reference": ratio, "ratio_to_reference_p10": ratio10})
        print(f"{name:>10} {args.num_envs / q[0.5]:>26,.0f} {args.num_envs / q[0.1]:>12,.0f} {ratio:>16.3f}"
              f" {ratio10:>7.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "native_step_ab", "num_envs": args.num_envs, "rounds": args.rounds,
                                    "steps_per_round": args.steps, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                                    "reference": reference, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
