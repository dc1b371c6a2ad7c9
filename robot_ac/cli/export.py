"""``robot-ac export SOURCE``: checkpoint -> ONNX policy bundle, and ONNX policy -> C99 for microcontrollers.

User errors (unsupported operator, bad contract, missing file, mismatch) end with one clear line on stderr
and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_MISMATCH = 1
CHECKPOINT_NAME = "checkpoint.pt"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a policy: checkpoint -> ONNX bundle, ONNX -> dependency-free C99 (verified on host and M4)",
        description=(
            "Export a policy. SOURCE is an ONNX file (robot_ac's own or a foreign one such as an rsl_rl / "
            "Isaac Lab policy.onnx), or a training run folder / checkpoint.pt to write as an ONNX bundle (--onnx)."
        ),
    )
    p.add_argument("source", metavar="SOURCE", help="policy.onnx, or a run folder / checkpoint.pt")
    p.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX policy bundle (checkpoint sources only)")
    p.add_argument("--c", dest="c_dir", metavar="OUT_DIR", help="write policy.h / policy.c into OUT_DIR")
    p.add_argument(
        "--contract",
        metavar="FILE",
        help="observation/action contract (JSON or YAML); overrides the ONNX 'robot_ac_contract' metadata",
    )
    p.add_argument("--verify", action="store_true", help="compare the C code with onnxruntime (host + QEMU M4)")
    p.add_argument("--recorded", metavar="OBS.npy", help="extra observations [n, n_obs] to verify on")
    p.add_argument("--json", metavar="REPORT.json", help="write the verification report as JSON")
    p.add_argument("--n-random", type=int, default=10_000, help="random observations to verify (default 10000)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (default 1e-5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random observations")
    p.add_argument("--no-qemu", action="store_true", help="skip the emulated Cortex-M4 check")
    p.add_argument("--qemu-max", type=int, default=None, metavar="N", help="verify at most N observations in QEMU")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robot_ac.export.onnx_graph import ExportError

    try:
        source = Path(args.source)
        if source.suffix.lower() == ".onnx":
            if args.onnx:
                raise ExportError("--onnx writes a bundle from a checkpoint; SOURCE is already an ONNX file")
            if not args.c_dir:
                raise ExportError("nothing to do: pass --c OUT_DIR to generate C code")
            return export_c(args, source)
        return export_from_checkpoint(args, source)
    except ExportError as err:
        print(f"robot-ac export: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR


def export_from_checkpoint(args: argparse.Namespace, source: Path) -> int:
    """Training checkpoint (a run folder or its ``checkpoint.pt``) -> ONNX bundle ``--onnx``, then optionally C.

    The contract comes from the environment of the run's task, so the bundle describes the observation
    vector the actor was trained on; the training config's hash travels with it.
    """
    from robot_ac.export.onnx_graph import ExportError

    if not source.exists():
        raise ExportError(f"{source}: no such file or run folder")
    checkpoint = source / CHECKPOINT_NAME if source.is_dir() else source
    if checkpoint.name != CHECKPOINT_NAME:
        # the trainer restores <run folder>/checkpoint.pt; any other name would silently load a different file
        raise ExportError(f"{source}: expected an .onnx file, a run folder or its {CHECKPOINT_NAME}")
    if not checkpoint.is_file():
        raise ExportError(f"{checkpoint}: no such checkpoint")
    if not args.onnx:
        raise ExportError(f"{source}: a checkpoint exports to a bundle first; pass --onnx OUT.onnx")
    if args.contract:
        raise ExportError("--contract applies to foreign ONNX files; a checkpoint's contract comes from its task")
    out = Path(args.onnx)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"--onnx {out}: the bundle file name must end in .onnx")
    if args.verify and not args.c_dir:  # checked before anything is written
        raise ExportError("--verify checks the C code; pass --c OUT_DIR too")
    if (args.recorded or args.json) and not args.verify:
        raise ExportError("--recorded and --json need --verify")
    bundle_path = write_bundle(checkpoint, out)
    print(f"wrote {bundle_path}")
    if not args.c_dir:
        return 0
    return export_c(args, bundle_path)


def write_bundle(checkpoint: Path, out: Path) -> Path:
    """Rebuild the actor from ``checkpoint`` and write it with its task's contract as one ONNX bundle."""
    import pickle

    from robot_ac.config import to_mapping
    from robot_ac.export.onnx_graph import ExportError
    from robot_ac.policy import BundleError, export_bundle
    from robot_ac.sim.quadrotor.env import QuadrotorEnv
    from robot_ac.training.policy_source import actor_from_checkpoint
    from robot_ac.training.runner import shipped_best_actor

    try:
        actor, train_cfg = actor_from_checkpoint(checkpoint)
        best = shipped_best_actor(checkpoint.parent)
        if best is not None:
            print(f"exporting the run's best-evaluation actor ({best.name}), as the run itself shipped")
    except (OSError, EOFError, KeyError, AttributeError, RuntimeError, pickle.UnpicklingError) as err:
        raise ExportError(f"{checkpoint}: cannot load the checkpoint ({type(err).__name__}: {err})") from err
    try:
        contract = QuadrotorEnv(train_cfg.task, num_envs=1).contract.to_dict()
        return export_bundle(actor, contract, out, training_config=to_mapping(train_cfg))
    except BundleError as err:
        raise ExportError(str(err)) from err
    except OSError as err:
        raise ExportError(f"cannot write {out}: {err.strerror or err}") from err


def export_c(args: argparse.Namespace, source: Path) -> int:
    """ONNX -> C (``--c``) and optional verification (``--verify``)."""
    from robot_ac.export.onnx_graph import ExportError
    from robot_ac.export.onnx_to_c import export_onnx_to_c

    if (args.verify is False) and (args.recorded or args.json):
        raise ExportError("--recorded and --json need --verify")
    result = export_onnx_to_c(source, args.c_dir, args.contract)
    plan = result.plan
    print(
        f"wrote {result.files['policy.h']} and {result.files['policy.c']}: {plan.n_obs} obs -> {plan.n_act} "
        f"actions, {sum(c.size for c in plan.consts.values())} weights, ops {', '.join(sorted(set(plan.op_types)))}"
    )
    if result.contract is None:
        print("note: no contract (ONNX metadata 'robot_ac_contract' or --contract): header has sizes only")
    if not args.verify:
        return 0
    from robot_ac.export.verify_c import format_report, verify

    report = verify(
        source,
        args.c_dir,
        n_random=args.n_random,
        recorded=args.recorded,
        atol=args.atol,
        rtol=args.rtol,
        seed=args.seed,
        qemu=not args.no_qemu,
        max_qemu_observations=args.qemu_max,
    )
    print(format_report(report))
    if args.json:
        path = Path(args.json)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        except OSError as err:
            raise ExportError(f"cannot write {path}: {err.strerror or err}") from err
    if not report.passed:
        why = "C output does not match onnxruntime" if (report.host or report.qemu) else "nothing could be verified"
        print(f"robot-ac export: error: verification failed: {why}", file=sys.stderr)
        return EXIT_MISMATCH
    return 0
