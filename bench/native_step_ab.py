"""A/B of fused C step sources in one process: env-steps/s of each, and their ratio to the first.

Why: this VM's speed drifts by up to 2x within an hour, so two runs of ``sim_throughput.py`` cannot show a 10% change.
Here every source gets its own library and environment, and blocks of steps alternate between them; the ratio is the
median of the per-round ratios. Sources are C files with ``native_step.c``'s interface (e.g. an older revision from
``git show REV:robot_ac/sim/quadrotor/native_step.c``).

    python bench/native_step_ab.py old=/tmp/old_step.c new=robot_ac/sim/quadrotor/native_step.c [--num-envs 4096]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_timing import block_means_ms  # noqa: E402  (beside this script)

from robot_ac.sim.quadrotor import native  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", help="NAME=PATH of a step source; the first is the reference")
    parser.add_argument("--num-envs", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per source and round")
    parser.add_argument("--out", type=Path, default=Path("bench/results/native_step_ab.json"))
    args = parser.parse_args()
    sources = dict(item.split("=", 1) for item in args.sources)
    envs = {}
    default = native.SOURCE
    try:
        for name, path in sources.items():
            native.SOURCE = Path(path)  # library_for reads the source from here and names the library by its digest
            envs[name] = QuadrotorEnv(num_envs=args.num_envs, device="cpu", seed=0, compile=True)
            envs[name].reset(seed=0)
    finally:
        native.SOURCE = default
    generator = torch.Generator().manual_seed(0)
    actions = [torch.rand(args.num_envs, 4, generator=generator) * 2 - 1 for _ in range(16)]  # random commands
    rates: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(args.rounds):
        for name, env in envs.items():
            commands = itertools.cycle(actions)
            # the warm-up steps bring this environment's buffers back into the caches after the other's round
            step = functools.partial(lambda e, c: e.step(next(c)), env, commands)
            (ms,) = block_means_ms(step, args.steps, repeats=1, warmup=20)
            rates[name].append(args.num_envs / ms * 1e3)
    reference = next(iter(rates))
    rows = []
    print(f"{'source':>10} {'env-steps/s (median)':>22} {'min':>12} {'max':>12} {'ratio to ' + reference:>16}")
    for name, values in rates.items():
        ratio = statistics.median(a / b for a, b in zip(values, rates[reference], strict=True))
        rows.append({"source": name, "path": sources[name], "env_steps_per_s": statistics.median(values),
                     "min": min(values), "max": max(values), "ratio_to_reference": ratio, "rates": values})
        print(f"{name:>10} {statistics.median(values):>22,.0f} {min(values):>12,.0f} {max(values):>12,.0f} "
              f"{ratio:>16.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "native_step_ab", "num_envs": args.num_envs, "rounds": args.rounds,
                                    "steps_per_round": args.steps, "reference": reference, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
