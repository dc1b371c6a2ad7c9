"""The calibration loop on a synthetic "real" drone whose parameters are off the robot file by 15%.

    python calibration/loop_demo.py policies/crazyflie_hover/policy.onnx [--compare NEW_POLICY.onnx]

1. ``robot-ac calibrate synth``: logs (thrust stand, motor steps, hover, static IMU, HIL latency) of a drone whose
   mass, thrust and yaw coefficients, rpm range and motor time constant are each 15% off ``crazyflie.yaml``,
   plus its truth and its robot file ``true_crazyflie.yaml``.
2. ``robot-ac calibrate thrust|motor|imu|latency|hover`` on those logs.
3. ``robot-ac calibrate apply``: the calibrated robot file.
4. The success criterion (robot_ac.training.evaluate) for the policy on the nominal robot, on the true drone and on
   the calibrated robot (its randomization ranges); with ``--compare``, a second policy (the one retrained on the
   calibrated file) on the true drone too.

Retraining itself is ``robot-ac train quadrotor-hover --robot <calibrated file>`` (about 20 minutes of training);
then run this script again with ``--compare <run>/policy.onnx``. See calibration/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robot_ac.cli import main as robot_ac
from robot_ac.sim.quadrotor.env import QuadrotorEnv
from robot_ac.training.evaluate import evaluate_policy
from robot_ac.training.policy_source import load_policy

STEPS = ("thrust", "motor", "imu", "latency")


def run(argv: list[str], what: str) -> None:
    print(f"$ robot-ac {' '.join(argv)}", flush=True)
    if robot_ac(argv) != 0:
        sys.exit(f"loop_demo: {what} failed")


def evaluate(bundle: Path, robot: Path | str, episodes: int, seed: int) -> dict:
    policy, task = load_policy(bundle)
    env = QuadrotorEnv(task, num_envs=episodes, seed=seed, curriculum=False, robot=robot)
    return evaluate_policy(policy, episodes=episodes, seed=seed, env=env).to_dict()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path, help="policy bundle (.onnx) trained on the nominal robot")
    p.add_argument("--compare", type=Path, default=None, help="second bundle, e.g. retrained on the calibrated file")
    p.add_argument("--work-dir", type=Path, default=Path("calibration/loop"), help="logs, results and report")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic drone and its logs")
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--off-nominal", type=float, default=0.15)
    args = p.parse_args()

    logs = args.work_dir / "logs"
    results = args.work_dir / "results"
    run(["calibrate", "synth", str(logs), "--seed", str(args.seed), "--off-nominal", str(args.off_nominal)],
        "synthetic logs")
    for step in STEPS:
        run(["calibrate", step, str(logs / f"{step}.csv"), "--out", str(results / f"{step}.yaml")], step)
    run(["calibrate", "hover", str(logs / "hover.csv"), "--thrust", str(results / "thrust.yaml"),
         "--motor", str(results / "motor.yaml"), "--imu", str(results / "imu.yaml"),
         "--out", str(results / "hover.yaml")], "hover")
    calibrated = args.work_dir / "crazyflie_loop.yaml"
    run(["calibrate", "apply", *[str(results / f"{s}.yaml") for s in (*STEPS, "hover")], "--robot", "crazyflie",
         "--out", str(calibrated)], "apply")

    true_robot = logs / "true_crazyflie.yaml"
    rows = {}
    cases = [("policy on nominal crazyflie", args.bundle, "crazyflie"),
             ("policy on the true drone", args.bundle, true_robot),
             ("policy on the calibrated robot", args.bundle, calibrated)]
    if args.compare:
        cases.append(("compared policy on the true drone", args.compare, true_robot))
    for label, bundle, robot in cases:
        print(f"evaluating: {label} ({args.episodes} episodes)", flush=True)
        rows[label] = evaluate(bundle, robot, args.episodes, args.eval_seed)
    print()
    width = max(len(k) for k in rows)
    print(f"{'case':<{width}}  success  survival  settle median [cm]")
    for label, r in rows.items():
        print(f"{label:<{width}}  {r['success_rate']:7.1%}  {r['survival_rate']:8.1%}  "
              f"{r['settle_error_median_m'] * 100:8.2f}")
    report = args.work_dir / "loop_report.json"
    report.write_text(json.dumps({"bundle": str(args.bundle), "compare": str(args.compare or ""),
                                  "off_nominal": args.off_nominal, "seed": args.seed, "episodes": args.episodes,
                                  "calibrated_robot": str(calibrated), "results": rows}, indent=2))
    print(f"wrote {report}")
    print(f"next: robot-ac train quadrotor-hover --robot {calibrated} --out runs/calibrated_loop, then\n"
          f"      python calibration/loop_demo.py {args.bundle} --work-dir {args.work_dir} "
          "--compare runs/calibrated_loop/policy.onnx")
    return 0


if __name__ == "__main__":
    sys.exit(main())
