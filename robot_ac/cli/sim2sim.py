"""``robot-ac sim2sim BUNDLE --engine pybullet``: the policy in an independent engine, with a report."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

GAP_ALLOWED_POINTS = 5.0  # success-rate gap to the training simulator that still passes (sim2sim issue)


def register(subparsers: argparse._SubParsersAction) -> None:
    from robot_ac.sim2sim.effects import EFFECT_NAMES

    p = subparsers.add_parser(
        "sim2sim", help="fly a policy bundle in an independent physics engine beside the training simulator",
        description="Flies the same start states (the training simulator's reset, nominal robot, no randomization "
                    "or noise) in the training simulator and in an independent engine, through the same "
                    "controller, and writes a report folder: report.md with a side-by-side table (success rate, "
                    "survival, settle error, RMS position error, control effort, action smoothness), summary.json "
                    "and PNG plots. Exits 1 when the effect-free engine's success rate is more than "
                    f"{GAP_ALLOWED_POINTS:g} points away from the training simulator's.")
    p.add_argument("bundle", help="policy bundle (.onnx)")
    p.add_argument("--engine", default="pybullet", help="independent engine (default pybullet)")
    p.add_argument("--episodes", type=int, default=100, help="episodes per engine (default 100)")
    p.add_argument("--effects", default="",
                   help=f"unmodelled effects to add, comma-separated: {','.join(EFFECT_NAMES)}")
    p.add_argument("--each-effect", action="store_true",
                   help="fly the engine once without effects and once per effect (or per --effects entry)")
    p.add_argument("--latency-ms", type=float, default=None, help="sensor latency of the latency effect (default 15)")
    p.add_argument("--jitter-ms", type=float, default=None,
                   help="control-period jitter of the jitter effect (default 2)")
    p.add_argument("--ground-distance", type=float, default=None,
                   help="floor distance below the target for the ground effect, m (default 0.3)")
    p.add_argument("--seconds", type=float, default=None, help="episode length (default: the task's)")
    p.add_argument("--seed", type=int, default=12345, help="seed of the start states")
    p.add_argument("--physics-hz", type=float, default=1000.0, help="engine physics rate (default 1000 Hz)")
    p.add_argument("--urdf", type=Path, default=None, help="URDF to load (default sim/robots/<robot>.urdf)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default <bundle>-sim2sim-<engine>/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _variants(args: argparse.Namespace):
    from robot_ac.sim2sim.backend import Sim2SimError
    from robot_ac.sim2sim.effects import EFFECT_NAMES, EffectSettings, parse_effects

    magnitudes = {}
    for flag, key, scale in (("latency_ms", "latency_s", 1e-3), ("jitter_ms", "jitter_s", 1e-3),
                             ("ground_distance", "ground_distance", 1.0)):
        value = getattr(args, flag)
        if value is not None:
            need_positive = key == "ground_distance"
            if not value >= 0 or (need_positive and value <= 0):
                bound = "positive" if need_positive else "zero or more"
                raise Sim2SimError(f"--{flag.replace('_', '-')} must be {bound}, got {value}")
            magnitudes[key] = value * scale
    base = replace(EffectSettings(), **magnitudes)
    chosen = parse_effects(args.effects, base)
    if not args.each_effect:
        return [chosen]
    names = chosen.active or EFFECT_NAMES
    return [base, *[replace(base, **{name: True}) for name in names]]


def run(args: argparse.Namespace) -> int:
    from robot_ac.config import ConfigError
    from robot_ac.policy.bundle import BundleError
    from robot_ac.sim2sim import EffectError, Sim2SimError, run_sim2sim, write_report

    try:
        if args.episodes < 1:
            raise Sim2SimError(f"--episodes must be at least 1, got {args.episodes}")
        if args.seconds is not None and args.seconds <= 0:
            raise Sim2SimError(f"--seconds must be positive, got {args.seconds}")
        variants = _variants(args)
        result = run_sim2sim(args.bundle, engine=args.engine, episodes=args.episodes, effects=variants,
                             seed=args.seed, seconds=args.seconds, physics_hz=args.physics_hz, urdf=args.urdf,
                             progress=not args.no_progress)
        bundle = Path(args.bundle)
        out = args.out or bundle.parent / f"{bundle.stem}-sim2sim-{args.engine}"
        out, metrics = write_report(result, out)
    except (BundleError, ConfigError, Sim2SimError, EffectError, FileNotFoundError) as err:
        print(f"robot-ac sim2sim: error: {err}", file=sys.stderr)
        return 2
    from robot_ac.sim2sim.report import table

    print(table(metrics))
    print(f"wrote {out}/report.md")
    reference = metrics[0]
    for m, run_ in zip(metrics[1:], result.runs[1:], strict=True):
        gap = (m.success_rate - reference.success_rate) * 100
        if not run_.effects.active and abs(gap) > GAP_ALLOWED_POINTS:
            print(f"robot-ac sim2sim: {m.label} success differs from the training simulator by {gap:+.1f} points "
                  f"(allowed {GAP_ALLOWED_POINTS:g})", file=sys.stderr)
            return 1
    return 0
