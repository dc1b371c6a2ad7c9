"""HIL round trip over a pseudo-terminal: host simulator <-> reference firmware (host build), in real time.

For each rate the full HIL loop runs for ``--seconds`` (split into ``--repeats`` runs on fresh firmware): absolute
deadlines, a STATE frame (146 float32) per cycle, the device's ACTION back, the simulator stepped with it
(torch.compile'd, one robot, randomization and noise on). Reports round-trip latency p50/p99 (send to matching
ACTION), missed cycles (no ACTION before the next deadline, or deadlines the host itself skipped) and the share of
missed cycles; medians over the repeats and the pooled figures. Target (issue "Hardware link and HIL"): 500 Hz
sustained with < 0.1% missed cycles. At 500 Hz the simulator runs 5x faster than real time (its control rate is
100 Hz); the link and the device do not know the difference.

    python bench/hil_latency.py [--rates 100 500] [--seconds 60] [--repeats 3] [--bundle policy.onnx]

Prints a table and writes bench/results/hil_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CYCLONEDDS_URI", (ROOT / "tests" / "cyclonedds-loopback.xml").resolve().as_uri())
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_ac.hardware.emulate import EmulatedDevice, build_firmware  # noqa: E402
from robot_ac.hardware.hil import HilConfig, run_hil  # noqa: E402
from robot_ac.hardware.serial_link import SerialLink  # noqa: E402
from robot_ac.policy import export_bundle, load_bundle  # noqa: E402

TRAINED = ROOT / "policies" / "crazyflie_hover" / "policy.onnx"
TARGET_RATE_HZ = 500.0
TARGET_MISSED = 0.001


def untrained_bundle(out: Path) -> Path:
    from robot_ac.algos.networks import DeterministicActor
    from robot_ac.sim.quadrotor.env import QuadrotorEnv

    torch.manual_seed(0)
    env = QuadrotorEnv(num_envs=1)
    actor = DeterministicActor(146, 4, [64, 64], "tanh", action_offset=env.hover_action)
    return export_bundle(actor, env.contract.to_dict(), out / "bench_policy.onnx")


def one_run(bundle, binary: Path, rate: float, seconds: float, seed: int) -> dict:
    config = HilConfig(rate_hz=rate, duration_s=seconds, compile_sim=True, seed=seed, target="host",
                       link_timeout_s=1.0)
    with EmulatedDevice(None, "host", binary=binary) as device, SerialLink(device.port) as link:
        report = run_hil(bundle, link, config)
    lat = np.asarray(report.latencies_s) * 1e3
    return {
        "status": report.status, "reason": report.reason, "cycles": report.scheduled_cycles,
        "answered": report.answered,
        "missed": report.missed_cycles, "host_overruns": report.host_overruns, "late_replies": report.late_replies,
        "missed_fraction": report.missed_fraction, "wall_s": report.wall_s,
        "achieved_hz": report.answered / report.wall_s if report.wall_s else 0.0,  # cycles answered in time
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        "max_ms": float(lat.max()) if lat.size else None,
        "send_lag_p99_ms": report.to_dict()["send_lag_ms"].get("p99"),
        "action_max_abs_diff": report.action_max_abs_diff,
        "device_faults": report.device_faults, "link": report.link,
        "_latencies_ms": lat.tolist(),
    }


def summarize(rate: float, runs: list[dict]) -> dict:
    pooled = np.concatenate([np.asarray(r.pop("_latencies_ms")) for r in runs]) if runs else np.zeros(0)
    cycles, missed = sum(r["cycles"] for r in runs), sum(r["missed"] for r in runs)

    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r[key] is not None]
        return statistics.median(vals) if vals else None

    return {
        "rate_hz": rate, "repeats": len(runs), "cycles": cycles, "missed": missed,
        "missed_fraction": missed / cycles if cycles else None,
        "p50_ms_median": med("p50_ms"), "p99_ms_median": med("p99_ms"),
        "missed_fraction_median": med("missed_fraction"), "achieved_hz_median": med("achieved_hz"),
        "pooled_p50_ms": float(np.percentile(pooled, 50)) if pooled.size else None,
        "pooled_p99_ms": float(np.percentile(pooled, 99)) if pooled.size else None,
        "all_completed": all(r["status"] == "completed" for r in runs),
        "meets_target": (rate >= TARGET_RATE_HZ and cycles > 0 and missed / cycles < TARGET_MISSED
                         and all(r["status"] == "completed" for r in runs)) if rate >= TARGET_RATE_HZ else None,
        "runs": runs,
    }


def table(rows: list[dict]) -> str:
    def f(v, spec=".3f"):
        return "-" if v is None else format(v, spec)

    head = (f"{'rate Hz':>8} {'achieved':>9} {'p50 ms':>8} {'p99 ms':>8} {'deadlines':>9} {'missed':>7} "
            f"{'missed %':>9}  ok")
    lines = [head, "-" * len(head)]
    for r in rows:
        frac = None if r["missed_fraction"] is None else 100 * r["missed_fraction"]
        lines.append(f"{r['rate_hz']:>8g} {f(r['achieved_hz_median'], '.1f'):>9} {f(r['p50_ms_median']):>8} "
                     f"{f(r['p99_ms_median']):>8} {r['cycles']:>9} {r['missed']:>7} {f(frac):>9}  "
                     f"{'yes' if r['all_completed'] else 'NO'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 500.0])
    parser.add_argument("--seconds", type=float, default=60.0, help="total seconds per rate (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per rate, each seconds/repeats long")
    parser.add_argument("--bundle", type=Path, default=TRAINED if TRAINED.exists() else None,
                        help="policy bundle (default: the shipped hover policy, else an untrained one, which crashes "
                             "within ~1 s so the run is mostly episode restarts)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hil_latency.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_hil_") as tmp:
        bundle_path = args.bundle or untrained_bundle(Path(tmp))
        binary = build_firmware(bundle_path, "host", tmp)
        bundle = load_bundle(bundle_path)
        rows = []
        for rate in args.rates:
            runs = []
            for rep in range(args.repeats):
                t0 = time.perf_counter()
                run = one_run(bundle, binary, rate, args.seconds / args.repeats, seed=rep)
                print(f"{rate:g} Hz run {rep + 1}/{args.repeats}: {run['status']}, p50 {run['p50_ms']} ms, "
                      f"missed {run['missed']}/{run['cycles']} ({time.perf_counter() - t0:.0f} s)", flush=True)
                runs.append(run)
            rows.append(summarize(rate, runs))
    print(table(rows))
    load = os.getloadavg()
    result = {
        "benchmark": "hil_latency", "seconds_per_rate": args.seconds, "repeats": args.repeats,
        "target": {"rate_hz": TARGET_RATE_HZ, "missed_fraction_below": TARGET_MISSED},
        "bundle": str(args.bundle) if args.bundle else "untrained 146-64-64-4 tanh actor",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_at_end": load,
                    "niceness": os.nice(0), "torch": torch.__version__},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out} (load average at end {load[0]:.2f})")


if __name__ == "__main__":
    main()
