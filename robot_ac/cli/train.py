"""``robot-ac train TASK``: train a policy, evaluate it against the success criterion, export the bundle."""

from __future__ import annotations

import argparse
import sys

from robot_ac.training import ALGORITHMS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train an asymmetric actor-critic policy in the batched simulator",
        description="Train a policy on TASK (e.g. quadrotor-hover). Settings come from sim/agents/<task>_<algo>.yaml; "
                    "flags override them. The run folder gets checkpoint.pt (every few seconds, atomically), "
                    "metrics.csv, TensorBoard events, learning_curve.png, config.yaml, summary.json and the "
                    "exported policy bundle policy.onnx.")
    p.add_argument("task", help="task id, e.g. quadrotor-hover (sim/tasks/<task>.yaml)")
    p.add_argument("--algo", choices=ALGORITHMS, default="ppo", help="learner (default ppo)")
    p.add_argument("--config", help="agent YAML to use instead of sim/agents/<task>_<algo>.yaml")
    p.add_argument("--robot", help="robot file to train on (sim/robots/<name>.yaml or a path), e.g. a calibrated one")
    p.add_argument("--num-envs", type=int, help="parallel environments")
    p.add_argument("--seed", type=int, help="random seed (environment, networks, noise)")
    p.add_argument("--device", help="cpu, cuda or cuda:N")
    p.add_argument("--until-success", action="store_true", default=None,
                   help="stop as soon as the success criterion holds (>= 95%% of 1000 evaluation episodes "
                        "survive 5 s and end within 5 cm), then export")
    p.add_argument("--max-seconds", type=float, help="wall-clock budget in seconds")
    p.add_argument("--max-env-steps", type=int, help="environment-step budget")
    p.add_argument("--eval-every", type=float, dest="eval_every_seconds", help="seconds between evaluations")
    p.add_argument("--checkpoint-every", type=float, dest="checkpoint_every_seconds",
                   help="seconds between checkpoints (default from the agent file)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, dest="compile_env",
                   help="torch.compile the simulator and the PPO loss (default from the agent file; the first run "
                        "on a machine compiles for about a minute, later runs load the compiled code from disk)")
    p.add_argument("--out", default=None, help="run folder (default runs/<task>-<algo>-s<seed>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run, quick_exit=True)  # every file is closed when run() returns


def run(args: argparse.Namespace) -> int:
    if args.algo == "ppo" and not (args.device or "").startswith("cuda"):
        # PPO on a CPU updates in a learner process: start what it is forked from before this process imports
        # torch, so that both import at once (robot_ac.algos.learner_host).
        from robot_ac.algos.learner_host import start_learner_host

        start_learner_host()
    from robot_ac.config import ConfigError
    from robot_ac.training.config import load_train_config
    from robot_ac.training.runner import Trainer, TrainingDiverged

    try:
        if args.resume:
            overrides = {"max_seconds": args.max_seconds, "max_env_steps": args.max_env_steps,
                         "until_success": args.until_success}
            trainer = Trainer(None, args.resume, resume=True, show_progress=not args.quiet, resume_overrides=overrides)
        else:
            cfg = load_train_config(
                args.task, args.algo, args.config, seed=args.seed, device=args.device,
                until_success=args.until_success, max_seconds=args.max_seconds, max_env_steps=args.max_env_steps,
                eval_every_seconds=args.eval_every_seconds, threads=args.threads, num_envs=args.num_envs,
                checkpoint_every_seconds=args.checkpoint_every_seconds, robot=args.robot,
                compile_env=args.compile_env)
            out = args.out or f"runs/{cfg.task}-{cfg.algo}-s{cfg.seed}"
            trainer = Trainer(cfg, out, show_progress=not args.quiet)
        result = trainer.train()
    except (ConfigError, FileNotFoundError) as err:
        print(f"robot-ac train: error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # KeyedValueError from config validation
        print(f"robot-ac train: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"robot-ac train: {err}", file=sys.stderr)
        return 3
    verdict = "criterion met" if result.succeeded else "criterion NOT met"
    print(f"{verdict} after {result.seconds:.1f} s and {result.env_steps:,} environment steps")
    if result.last_eval:
        print(f"  {result.last_eval.summary()}")
    print(f"  run folder {result.out_dir}; policy bundle {result.bundle}")
    if result.exported_actor != "last":
        print(f"  shipped actor: {result.exported_actor}, not the last iterate")
    return 0 if result.succeeded or not trainer.cfg.until_success else 1
