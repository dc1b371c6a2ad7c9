"""Check generated C against onnxruntime: on the host compiler and on an emulated Cortex-M4F.

Why both: the host run proves the code generator (fast, everywhere); the QEMU ``mps2-an386`` run proves the
same sources build with the embedded toolchain, fit, and compute the same numbers with single-precision
hardware floats, and it yields flash / RAM / instructions-per-inference figures for the target.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from robot_ac.c_source import host_compiler
from robot_ac.export.onnx_graph import ElementwiseOp, ExportError, MatMulOp, PolicyPlan, build_plan, load_model
from robot_ac.paths import repo_root

HOST_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-Wpedantic", "-O2")
ARM_CFLAGS = (
    "-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
    "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-ffunction-sections", "-fdata-sections",
)  # fmt: skip
QEMU_MACHINE = "mps2-an386"
QEMU_STATS_MAGIC = 0x524F424F54414331  # "ROBOTAC1", see hardware/verify/harness_qemu.c
INSTRUCTION_METHOD = (
    "QEMU -icount shift=0 (1 virtual ns per guest instruction); SysTick ticks around 64 policy_step calls, "
    "minus an empty loop, converted with a calibration loop of known instruction count"
)


APT_HINT = "Debian: apt install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"


class VerifyError(ExportError):
    """Verification could not run (compiler error, emulator crash, bad recorded observations)."""


@dataclass
class Comparison:
    """C outputs vs onnxruntime for one target."""

    target: str
    n_observations: int
    max_abs_error: float
    worst_tolerance_ratio: float  # max |err| / (atol + rtol*|ref|); <= 1 passes
    worst_observation: int
    mismatches: int
    passed: bool


@dataclass
class TargetFigures:
    """Cortex-M4F resource use; ``*_policy`` figures exclude the harness (image minus a stub-policy image)."""

    flash_bytes: int  # policy code + weights + math library routines it pulls in
    ram_static_bytes: int  # scratch buffers (.bss) and .data
    stack_bytes: int  # measured high-water mark of one policy_step (painted stack)
    ram_bytes: int  # ram_static_bytes + stack_bytes
    policy_object: dict[str, int]  # arm-none-eabi-size of policy.o (text, data, bss)
    stack_usage_su: dict[str, int]  # -fstack-usage frame sizes per function of policy.c
    image: dict[str, int]  # arm-none-eabi-size of the whole test firmware
    instructions_per_inference: float
    instruction_method: str = INSTRUCTION_METHOD


@dataclass
class VerifyReport:
    onnx: str
    c_dir: str
    n_obs: int
    n_act: int
    atol: float
    rtol: float
    n_random: int
    n_recorded: int
    seed: int
    host: Comparison | None = None
    host_skipped: str | None = None
    qemu: Comparison | None = None
    qemu_skipped: str | None = None
    target: TargetFigures | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        ran = [c for c in (self.host, self.qemu) if c is not None]
        return bool(ran) and all(c.passed for c in ran)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


# --------------------------------------------------------------------------------------------------
# Observations and reference


def _normalization(plan: PolicyPlan) -> tuple[np.ndarray, np.ndarray]:
    """Mean/std of a baked-in ``(obs - mean) / std`` (or ``* 1/std``) at the input, else zeros/ones.

    Sampling around the policy's own normalization exercises the network where it is used.
    """
    mean = np.zeros(plan.n_obs, np.float64)
    std = np.ones(plan.n_obs, np.float64)

    def reader(storage: str) -> ElementwiseOp | None:
        for op in plan.ops:
            if isinstance(op, ElementwiseOp) and any(not o.is_const and o.name == storage for o in op.inputs):
                return op
        return None

    def const_of(op: ElementwiseOp) -> np.ndarray | None:
        if len(op.inputs) != 2 or op.inputs[0].is_const or not op.inputs[1].is_const:
            return None
        o = op.inputs[1]
        arr = np.full(plan.n_obs, o.scalar) if o.scalar is not None else plan.consts[o.name].astype(np.float64)
        return arr if arr.size == plan.n_obs else None

    op = reader(plan.input_storage)
    if op is not None and op.kind == "Sub" and (c := const_of(op)) is not None:
        mean = c
        op = reader(op.out)
    if op is not None and op.kind in ("Div", "Mul") and (c := const_of(op)) is not None:
        scale = np.abs(c) if op.kind == "Div" else np.abs(1.0 / np.where(c == 0, 1.0, c))
        std = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
    return mean, std


def random_observations(plan: PolicyPlan, n: int, seed: int) -> np.ndarray:
    """Normal draws around the policy's normalization, each row scaled by 0.25..3 to reach saturation too."""
    rng = np.random.default_rng(seed)
    mean, std = _normalization(plan)
    z = rng.standard_normal((n, plan.n_obs))
    row_scale = np.exp(rng.uniform(math.log(0.25), math.log(3.0), size=(n, 1)))
    return (mean + std * z * row_scale).astype(np.float32)


def load_recorded(path: str | Path, n_obs: int) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise VerifyError(f"cannot read recorded observations {path}: {err}") from err
    if arr.ndim != 2 or arr.shape[1] != n_obs:
        raise VerifyError(f"recorded observations {path} have shape {arr.shape}; expected [n, {n_obs}]")
    return arr.astype(np.float32)


def reference_actions(model: onnx.ModelProto, obs: np.ndarray, n_act: int) -> np.ndarray:
    """onnxruntime on CPU; batches when the batch dimension is dynamic, else one row at a time."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return _run_session(sess, obs, n_act)
    except Exception as err:  # onnxruntime raises its own (pybind) exception types
        raise VerifyError(f"onnxruntime cannot run the model: {str(err).splitlines()[0]}") from err


def _run_session(sess, obs: np.ndarray, n_act: int) -> np.ndarray:
    inp = sess.get_inputs()[0]
    rows = obs
    if len(inp.shape) == 2 and inp.shape[0] == 1:
        outs = [sess.run(None, {inp.name: rows[i : i + 1]})[0].reshape(1, -1) for i in range(len(rows))]
        return np.concatenate(outs).reshape(len(obs), n_act)
    if len(inp.shape) == 1:
        outs = [sess.run(None, {inp.name: rows[i]})[0].reshape(1, -1) for i in range(len(rows))]
        return np.concatenate(outs).reshape(len(obs), n_act)
    out = []
    for start in range(0, len(rows), 4096):
        out.append(sess.run(None, {inp.name: rows[start : start + 4096]})[0].reshape(-1, n_act))
    return np.concatenate(out)


def compare(target: str, got: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> Comparison:
    """Element passes when |got - ref| <= atol + rtol * |ref| (NaN must match NaN)."""
    got = got.astype(np.float64)
    ref = ref.astype(np.float64)
    both_nan = np.isnan(got) & np.isnan(ref)
    same_inf = np.isinf(ref) & (got == ref)
    with np.errstate(invalid="ignore"):
        err = np.where(both_nan | same_inf, 0.0, np.abs(got - ref))
    err = np.where(np.isnan(err), np.inf, err)
    bad = err > atol + rtol * np.abs(np.nan_to_num(ref))
    ratio = err / (atol + rtol * np.abs(np.nan_to_num(ref)))
    worst = int(np.unravel_index(int(np.argmax(err)), err.shape)[0]) if err.size else -1
    return Comparison(
        target=target,
        n_observations=int(got.shape[0]),
        max_abs_error=float(err.max()) if err.size else 0.0,
        worst_tolerance_ratio=float(ratio.max()) if err.size else 0.0,
        worst_observation=worst,
        mismatches=int(bad.any(axis=1).sum()) if err.size else 0,
        passed=not bool(bad.any()),
    )


# --------------------------------------------------------------------------------------------------
# Building and running


def hardware_dir() -> Path:
    path = repo_root() / "hardware"
    if not (path / "verify" / "harness_host.c").is_file():
        raise VerifyError(f"harness sources not found under {path}; set ROBOT_AC_ROOT to the repository")
    return path


def _run(cmd: list[str], cwd: Path, what: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as err:
        raise VerifyError(f"{what} timed out after {timeout:.0f} s") from err
    except OSError as err:
        raise VerifyError(f"{what}: cannot run {cmd[0]}: {err.strerror or err}") from err
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise VerifyError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc


def run_host(c_dir: Path, obs: np.ndarray, n_act: int, work: Path) -> np.ndarray:
    """Compile policy.c with the host compiler into the file-based harness and run it."""
    cc = host_compiler()
    if cc is None:
        raise VerifyError("no host C compiler (set CC or install cc)")
    verify_dir = hardware_dir() / "verify"
    exe = work / "harness_host"
    cmd = [cc, *HOST_CFLAGS, f"-I{c_dir}", str(c_dir / "policy.c"), str(verify_dir / "harness_host.c")]
    _run([*cmd, "-o", str(exe), "-lm"], work, "host compile")
    obs_path, act_path = work / "host_obs.bin", work / "host_act.bin"
    obs.astype("<f4").tofile(obs_path)
    _run([str(exe), str(obs_path), str(act_path)], work, "host harness")
    return np.fromfile(act_path, dtype="<f4").reshape(len(obs), n_act)


def arm_toolchain_missing() -> str | None:
    """Why the Cortex-M4 check cannot run here, or None when it can."""
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH ({APT_HINT})"
    probe = subprocess.run(
        ["arm-none-eabi-gcc", *ARM_CFLAGS[:4], "-print-file-name=libm.a"], capture_output=True, text=True
    )
    if not os.path.isabs(probe.stdout.strip()):
        return "newlib for arm-none-eabi not found (Debian: apt install libnewlib-arm-none-eabi)"
    machines = subprocess.run(["qemu-system-arm", "-M", "help"], capture_output=True, text=True).stdout
    if QEMU_MACHINE not in machines:
        return f"qemu-system-arm does not emulate {QEMU_MACHINE}"
    return None


def _arm_size(path: Path, work: Path) -> dict[str, int]:
    out = _run(["arm-none-eabi-size", str(path)], work, "arm-none-eabi-size").stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def _read_su(path: Path) -> dict[str, int]:
    frames = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    return frames


STUB_POLICY = """#include "policy.h"
void policy_reset(void) {}
void policy_step(const float *obs, float *action) { (void)obs; (void)action; }
"""


def build_arm(c_dir: Path, work: Path, policy_cflags: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """Cross-compile harness + policy for the Cortex-M4F, plus a stub-policy image to subtract.

    ``policy_cflags`` go to ``policy.c`` only, e.g. ``-DROBOT_AC_PORTABLE_C`` to measure the plain C path.
    """
    hw = hardware_dir()
    qemu_dir, verify_dir = hw / "qemu", hw / "verify"
    inc = [f"-I{c_dir}", f"-I{qemu_dir}"]
    objs = {}
    for name, src in (
        ("startup", qemu_dir / "startup.c"),
        ("semihost", qemu_dir / "semihost.c"),
        ("harness", verify_dir / "harness_qemu.c"),
    ):
        objs[name] = work / f"{name}.o"
        _run(["arm-none-eabi-gcc", *ARM_CFLAGS, *inc, "-c", str(src), "-o", str(objs[name])], work, f"{name} build")
    policy_o = work / "policy.o"
    _run(
        ["arm-none-eabi-gcc", *ARM_CFLAGS, *policy_cflags, "-fstack-usage", *inc, "-c", str(c_dir / "policy.c"),
         "-o", str(policy_o)],
        work, "Cortex-M4 compile of policy.c",
    )  # fmt: skip
    stub_c, stub_o = work / "stub_policy.c", work / "stub_policy.o"
    stub_c.write_text(STUB_POLICY)
    _run(["arm-none-eabi-gcc", *ARM_CFLAGS, *inc, "-c", str(stub_c), "-o", str(stub_o)], work, "stub build")
    link = [
        "arm-none-eabi-gcc", *ARM_CFLAGS, "-nostartfiles", "-T", str(qemu_dir / "mps2_an386.ld"),
        "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
        str(objs["startup"]), str(objs["semihost"]), str(objs["harness"]),
    ]  # fmt: skip
    elf, stub_elf = work / "policy_m4.elf", work / "stub_m4.elf"
    _run([*link, str(policy_o), "-lm", "-o", str(elf)], work, "Cortex-M4 link")
    _run([*link, str(stub_o), "-lm", "-o", str(stub_elf)], work, "Cortex-M4 stub link")
    sizes = {
        "policy_o": _arm_size(policy_o, work),
        "image": _arm_size(elf, work),
        "stub_image": _arm_size(stub_elf, work),
        "su": _read_su(work / "policy.su"),
    }
    return elf, sizes


def estimated_instructions(plan: PolicyPlan) -> float:
    """Rough Cortex-M4 instructions per inference (~7 per multiply-add, ~120 per libm call).

    Only used to bound QEMU run time; the measured figure comes from the emulator.
    """
    total = 200.0
    for op in plan.ops:
        if isinstance(op, MatMulOp):
            total += 7.0 * op.m * op.k * op.n + 10.0 * op.m * op.n
        elif isinstance(op, ElementwiseOp):
            heavy = op.kind in ("Tanh", "Sigmoid", "Elu", "Exp")
            total += (120.0 if heavy else 8.0) * math.prod(op.shape)
        else:
            total += 5.0 * op.outer * sum(block for _, block in op.inputs)
    return total


# About 60 s of emulation: QEMU with -icount runs a few hundred million guest instructions per second here.
QEMU_INSTRUCTION_BUDGET = 2e10
QEMU_MIN_INSTRUCTIONS_PER_S = 5e7  # for the timeout only, deliberately pessimistic


def run_qemu(
    elf: Path, obs: np.ndarray, n_act: int, work: Path, est_instructions: float = 1e5
) -> tuple[np.ndarray, np.ndarray]:
    """Run the firmware on QEMU mps2-an386; returns (actions, stats words)."""
    (work / "obs.bin").write_bytes(obs.astype("<f4").tobytes())
    for stale in ("act.bin", "stats.bin"):
        (work / stale).unlink(missing_ok=True)
    cmd = [
        "qemu-system-arm", "-M", QEMU_MACHINE, "-nographic", "-monitor", "none", "-serial", "null",
        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf),
    ]  # fmt: skip
    timeout = 120.0 + len(obs) * est_instructions / QEMU_MIN_INSTRUCTIONS_PER_S
    _run(cmd, work, "QEMU run", timeout=timeout)
    stats = np.fromfile(work / "stats.bin", dtype="<u8") if (work / "stats.bin").is_file() else np.zeros(0)
    if stats.size != 8 or int(stats[0]) != QEMU_STATS_MAGIC or int(stats[1]) != len(obs):
        raise VerifyError("QEMU harness did not report its statistics (stats.bin missing or corrupt)")
    act = np.fromfile(work / "act.bin", dtype="<f4")
    return act.reshape(len(obs), n_act), stats


def target_figures(sizes: dict, stats: np.ndarray) -> TargetFigures:
    img, stub = sizes["image"], sizes["stub_image"]
    flash = (img["text"] + img["data"]) - (stub["text"] + stub["data"])
    ram_static = (img["data"] + img["bss"]) - (stub["data"] + stub["bss"])
    _, _, repeats, t_policy, t_empty, t_calib, calib_instr, stack = (int(v) for v in stats)
    instr_per_tick = calib_instr / t_calib if t_calib else float("nan")
    return TargetFigures(
        flash_bytes=flash,
        ram_static_bytes=ram_static,
        stack_bytes=stack,
        ram_bytes=ram_static + stack,
        policy_object=sizes["policy_o"],
        stack_usage_su=sizes["su"],
        image=img,
        instructions_per_inference=(t_policy - t_empty) * instr_per_tick / repeats,
    )


# --------------------------------------------------------------------------------------------------
# Entry point


def verify(
    model: onnx.ModelProto | str | Path,
    c_dir: str | Path,
    *,
    n_random: int = 10_000,
    recorded: str | Path | np.ndarray | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    seed: int = 0,
    host: bool = True,
    qemu: bool = True,
    max_qemu_observations: int | None = None,
    work_dir: str | Path | None = None,
) -> VerifyReport:
    """Compare ``c_dir/policy.c`` with onnxruntime on random (+ recorded) observations."""
    source = str(model) if isinstance(model, str | Path) else (model.graph.name or "<in-memory model>")
    model = load_model(model)
    plan = build_plan(model)
    c_dir = Path(c_dir).resolve()
    for name in ("policy.h", "policy.c"):
        if not (c_dir / name).is_file():
            raise VerifyError(f"{c_dir / name} not found; export the C code first")
    notes = _stale_c_notes(model, c_dir)
    obs = random_observations(plan, n_random, seed)
    n_recorded = 0
    if recorded is not None:
        rec = recorded if isinstance(recorded, np.ndarray) else load_recorded(recorded, plan.n_obs)
        n_recorded = len(rec)
        obs = np.concatenate([obs, rec.astype(np.float32)])
    report = VerifyReport(
        onnx=source, c_dir=str(c_dir), n_obs=plan.n_obs, n_act=plan.n_act, atol=atol, rtol=rtol,
        n_random=n_random, n_recorded=n_recorded, seed=seed,
        notes=notes,
    )  # fmt: skip
    if len(obs) == 0:
        raise VerifyError("nothing to verify: 0 random and 0 recorded observations")
    ref = reference_actions(model, obs, plan.n_act)
    with tempfile.TemporaryDirectory(prefix="robot_ac_verify_") as tmp:
        work = Path(work_dir).resolve() if work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not host:
            report.host_skipped = "disabled"
        elif host_compiler() is None:
            report.host_skipped = "no host C compiler (cc) on PATH"
        else:
            got = run_host(c_dir, obs, plan.n_act, work)
            report.host = compare("host cc", got, ref, atol, rtol)
        why = "disabled" if not qemu else arm_toolchain_missing()
        if why:
            report.qemu_skipped = why
        else:
            m4_obs, m4_ref = obs, ref
            est = estimated_instructions(plan)
            if max_qemu_observations is None and len(obs) * est > QEMU_INSTRUCTION_BUDGET:
                max_qemu_observations = max(1000, int(QEMU_INSTRUCTION_BUDGET / est))
                report.notes.append(
                    f"large network (~{est:,.0f} instructions per inference): QEMU checks "
                    f"{min(max_qemu_observations, len(obs))} of {len(obs)} observations (set --qemu-max to change)"
                )
            if max_qemu_observations is not None and len(obs) > max_qemu_observations:
                # keep the recorded rows (they are the interesting ones) and as many random rows as fit
                keep = np.r_[np.arange(max(0, max_qemu_observations - n_recorded)), np.arange(n_random, len(obs))]
                keep = keep[:max_qemu_observations]
                m4_obs, m4_ref = obs[keep], ref[keep]
            elf, sizes = build_arm(c_dir, work)
            got, stats = run_qemu(elf, m4_obs, plan.n_act, work, est)
            report.qemu = compare(f"Cortex-M4F (qemu {QEMU_MACHINE})", got, m4_ref, atol, rtol)
            report.target = target_figures(sizes, stats)
    return report


def _stale_c_notes(model: onnx.ModelProto, c_dir: Path) -> list[str]:
    """Warn when policy.c says it came from another ONNX file (the comparison would then fail)."""
    import hashlib

    sha = hashlib.sha256(model.SerializeToString()).hexdigest()
    head = (c_dir / "policy.c").read_text(encoding="utf-8", errors="replace")[:400]
    if "Source ONNX sha256:" in head and sha not in head:
        return [f"{c_dir / 'policy.c'} was generated from a different ONNX model than the one verified"]
    return []


def format_report(report: VerifyReport) -> str:
    """Human-readable table for the CLI."""
    lines = [
        f"C policy verification: {report.n_obs} obs -> {report.n_act} actions, "
        f"{report.n_random} random + {report.n_recorded} recorded observations, "
        f"tolerance |err| <= {report.atol:g} + {report.rtol:g}*|ref|",
        "",
        f"{'target':<30} {'n':>7} {'max abs err':>12} {'err/tol':>8} {'mismatch':>8}  result",
    ]
    for comp, skipped, label in (
        (report.host, report.host_skipped, "host cc"),
        (report.qemu, report.qemu_skipped, f"Cortex-M4F (qemu {QEMU_MACHINE})"),
    ):
        if comp is None:
            lines.append(f"{label:<30} {'-':>7} {'-':>12} {'-':>8} {'-':>8}  SKIPPED: {skipped}")
        else:
            lines.append(
                f"{comp.target:<30} {comp.n_observations:>7} {comp.max_abs_error:>12.3e} "
                f"{comp.worst_tolerance_ratio:>8.3f} {comp.mismatches:>8}  {'PASS' if comp.passed else 'FAIL'}"
            )
    t = report.target
    if t is not None:
        obj_flash = t.policy_object["text"] + t.policy_object["data"]
        lines += [
            "",
            "Cortex-M4F footprint (policy + math library, harness excluded):",
            f"  flash  {t.flash_bytes:>9} B   (policy.o text+data {obj_flash} B)",
            f"  RAM    {t.ram_bytes:>9} B   (static {t.ram_static_bytes} B + measured stack {t.stack_bytes} B;"
            f" policy_step frame {t.stack_usage_su.get('policy_step', 0)} B)",
            f"  instructions per inference  {t.instructions_per_inference:,.0f}",
            f"  method: {t.instruction_method}",
        ]
    lines += [f"note: {note}" for note in report.notes]
    lines += ["", f"RESULT: {'PASS' if report.passed else 'FAIL'}"]
    return "\n".join(lines)
