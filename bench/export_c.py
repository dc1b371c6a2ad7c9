"""The exported C policy for the L2F-sized actor: Cortex-M4 instructions, flash, RAM; host latencies.

The actor is what ``export_bundle`` produces for a (policy group: 149 = L2F's 146 plus the position-error
integral) -> 64 -> 64 -> 4 tanh MLP with the observation normalization and the action clamp baked in
(or any bundle via ``--bundle``). Rows:

* Cortex-M4F (QEMU mps2-an386, ``-icount`` instruction counting, see hardware/verify/README.md):
  instructions per inference, flash, RAM; the generated code as shipped and, for comparison, its
  portable-C path with libm's ``tanhf`` (``-DROBOT_AC_PORTABLE_C -DROBOT_AC_LIBM_TANH``).
* Host: latency of one ``policy_step`` call of the C code (``cc -O2``) and of one single-sample
  onnxruntime ``session.run`` (single-threaded session), median and p99 over >= 10,000 calls per repeat,
  then the median over repeats.

Anchor: RLtools / Learning to Fly in Seconds (Eschmann et al., 2023; github.com/arplaboratory/learning-to-fly)
runs a [64, 64] actor on the Crazyflie's STM32F405 (Cortex-M4F, 168 MHz) in 293 us with their optimized
inference and 743 us with the generic one. Our figure is instructions, not cycles: on the real core
VMLA.F32 takes 3 cycles and VLDM 1 + N (Cortex-M4 TRM), and flash wait states add more.

    python bench/export_c.py [--bundle policy.onnx] [--repeats 5] [--calls 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("CYCLONEDDS_URI", (REPO / "tests" / "cyclonedds-loopback.xml").as_uri())
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_ac.export import verify_c  # noqa: E402
from robot_ac.export.onnx_graph import build_plan, load_model  # noqa: E402
from robot_ac.export.onnx_to_c import export_onnx_to_c  # noqa: E402
from robot_ac.policy import export_bundle, load_bundle  # noqa: E402

BASELINE_FLAGS = ("-DROBOT_AC_PORTABLE_C", "-DROBOT_AC_LIBM_TANH")
TARGETS = {"instructions_per_inference": 25_000, "flash_bytes": 64 * 1024, "ram_bytes": 8 * 1024,
           "max_abs_error": 1e-5}  # fmt: skip


def l2f_bundle(path: Path) -> Path:
    """The L2F-sized actor with normalizer statistics from simulated flight, output head at unit gain."""
    from robot_ac.algos.networks import DeterministicActor
    from robot_ac.sim.quadrotor.env import QuadrotorEnv

    env = QuadrotorEnv("quadrotor-hover", num_envs=256, seed=0)
    torch.manual_seed(0)
    n_obs = env.observation_size("policy")
    actor = DeterministicActor(n_obs, 4, [64, 64], "tanh", action_offset=env.hover_action, output_gain=1.0)
    obs = [env.reset(seed=0)["policy"]]
    for _ in range(50):
        obs.append(env.step(torch.rand(env.num_envs, 4) * 0.6 - 0.3 + env.hover_action).observations["policy"])
    actor.normalizer.update(torch.cat(obs))
    return export_bundle(actor.eval(), env.contract.to_dict(), path)


def cortex_m4(c_dir: Path, obs: np.ndarray, n_act: int, work: Path, flags: tuple[str, ...]) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    elf, sizes = verify_c.build_arm(c_dir, work, policy_cflags=flags)
    _, stats = verify_c.run_qemu(elf, obs, n_act, work)
    fig = verify_c.target_figures(sizes, stats)
    return {"instructions_per_inference": fig.instructions_per_inference, "flash_bytes": fig.flash_bytes,
            "ram_bytes": fig.ram_bytes, "ram_static_bytes": fig.ram_static_bytes, "stack_bytes": fig.stack_bytes,
            "policy_cflags": list(flags)}  # fmt: skip


def percentiles(ns: np.ndarray) -> tuple[float, float]:
    return float(np.median(ns)) / 1e3, float(np.percentile(ns, 99)) / 1e3


def host_c_latency(c_dir: Path, obs: np.ndarray, work: Path, calls: int, repeats: int) -> dict:
    cc = verify_c.host_compiler()
    if cc is None:
        return {"skipped": "no host C compiler"}
    exe = work / "harness_timing"
    src = REPO / "hardware" / "verify" / "harness_timing.c"
    subprocess.run([cc, *verify_c.HOST_CFLAGS, f"-I{c_dir}", str(c_dir / "policy.c"), str(src), "-o", str(exe),
                    "-lm"], check=True)  # fmt: skip
    obs_path, out_path = work / "timing_obs.bin", work / "timing_ns.bin"
    obs[:4096].astype("<f4").tofile(obs_path)
    medians, p99s = [], []
    for _ in range(repeats):
        subprocess.run([str(exe), str(obs_path), str(calls), str(out_path)], check=True)
        median, p99 = percentiles(np.fromfile(out_path, dtype=np.uint64))
        medians.append(median)
        p99s.append(p99)
    return {"median_us": statistics.median(medians), "p99_us": statistics.median(p99s), "calls": calls,
            "repeats": repeats, "per_repeat_median_us": medians, "cflags": list(verify_c.HOST_CFLAGS)}  # fmt: skip


def onnxruntime_latency(bundle: Path, obs: np.ndarray, calls: int, repeats: int) -> dict:
    import onnxruntime as ort

    session = load_bundle(bundle).session(threads=1)
    rows = [obs[i : i + 1] for i in range(min(len(obs), 4096))]
    for i in range(500):
        session.run(["action"], {"obs": rows[i % len(rows)]})
    medians, p99s = [], []
    for _ in range(repeats):
        ns = np.empty(calls, np.int64)
        for i in range(calls):
            t0 = time.perf_counter_ns()
            session.run(["action"], {"obs": rows[i % len(rows)]})
            ns[i] = time.perf_counter_ns() - t0
        median, p99 = percentiles(ns)
        medians.append(median)
        p99s.append(p99)
    return {"median_us": statistics.median(medians), "p99_us": statistics.median(p99s), "calls": calls,
            "repeats": repeats, "per_repeat_median_us": medians, "threads": 1,
            "onnxruntime": ort.__version__}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, help="a policy bundle (default: build the L2F-sized actor)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10_000, help="latency calls per repeat (>= 10,000)")
    parser.add_argument("--verify-n", type=int, default=2000, help="observations for the parity check")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "export_c.json")
    args = parser.parse_args()
    why = verify_c.arm_toolchain_missing()
    if why:
        print(f"export_c bench: the Cortex-M4 rows need the Arm toolchain: {why}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="robot_ac_bench_") as tmp:
        work = Path(tmp)
        bundle = args.bundle or l2f_bundle(work / "policy.onnx")
        c_dir = work / "c"
        export_onnx_to_c(bundle, c_dir)
        plan = build_plan(load_model(bundle))
        report = verify_c.verify(bundle, c_dir, n_random=args.verify_n, work_dir=work / "verify")
        obs = verify_c.random_observations(plan, 4096, seed=1)
        optimized = cortex_m4(c_dir, obs[:16], plan.n_act, work / "m4_opt", ())
        baseline = cortex_m4(c_dir, obs[:16], plan.n_act, work / "m4_base", BASELINE_FLAGS)
        host = host_c_latency(c_dir, obs, work, args.calls, args.repeats)
        ort_lat = onnxruntime_latency(bundle, obs, args.calls, args.repeats)
        weights = sum(int(c.size) for c in plan.consts.values())

    parity = {t: {"max_abs_error": c.max_abs_error, "n": c.n_observations, "passed": c.passed}
              for t, c in (("host", report.host), ("cortex_m4", report.qemu)) if c is not None}  # fmt: skip
    meets = {
        "instructions_per_inference": optimized["instructions_per_inference"] <= TARGETS["instructions_per_inference"],
        "flash_bytes": optimized["flash_bytes"] <= TARGETS["flash_bytes"],
        "ram_bytes": optimized["ram_bytes"] <= TARGETS["ram_bytes"],
        "max_abs_error": bool(parity) and all(p["max_abs_error"] <= TARGETS["max_abs_error"] for p in parity.values()),
    }
    print(f"policy {'bundle ' + str(args.bundle) if args.bundle else 'L2F-sized 149-64-64-4 tanh'}: "
          f"{plan.n_obs} obs -> {plan.n_act} actions, {weights} constants")
    print(f"\n{'Cortex-M4F (QEMU mps2-an386)':<34} {'instructions':>12} {'flash B':>9} {'RAM B':>7}")
    for label, row in (("generated C (VFP kernels)", optimized), ("portable C + libm tanhf", baseline)):
        print(f"{label:<34} {row['instructions_per_inference']:>12,.0f} {row['flash_bytes']:>9,} "
              f"{row['ram_bytes']:>7,}")
    print(f"{'target':<34} {TARGETS['instructions_per_inference']:>12,} {TARGETS['flash_bytes']:>9,} "
          f"{TARGETS['ram_bytes']:>7,}")
    print(f"\n{'C vs onnxruntime':<34} {'n':>7} {'max abs err':>12}")
    for target, p in parity.items():
        print(f"{target:<34} {p['n']:>7} {p['max_abs_error']:>12.2e}")
    print(f"\n{'host latency, one observation':<34} {'median us':>10} {'p99 us':>9}")
    if "skipped" not in host:
        print(f"{'C policy_step (cc -O2)':<34} {host['median_us']:>10.2f} {host['p99_us']:>9.2f}")
    print(f"{'onnxruntime, 1 thread':<34} {ort_lat['median_us']:>10.2f} {ort_lat['p99_us']:>9.2f}")
    print(f"\ntargets met: {meets}")
    result = {
        "benchmark": "export_c", "policy": str(args.bundle) if args.bundle else "L2F-sized 149-64-64-4 tanh",
        "n_obs": plan.n_obs, "n_act": plan.n_act, "constants": weights,
        "cortex_m4": {"generated": optimized, "portable_c_libm_tanh": baseline,
                      "method": verify_c.INSTRUCTION_METHOD, "machine": verify_c.QEMU_MACHINE},
        "parity": parity, "host_c_latency": host, "onnxruntime_latency": ort_lat, "targets": TARGETS, "meets": meets,
        "anchor": "RLtools/Learning-to-Fly: [64,64] actor on STM32F405 @168 MHz, 293 us optimized / 743 us generic",
        "host": {"machine": platform.machine(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                 "loadavg_at_end": os.getloadavg(), "python": platform.python_version()},
        "compiler": shutil.which("cc"),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(meets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
