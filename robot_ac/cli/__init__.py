"""``robot-ac`` command line: one sub-command per module, each exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys

# Each entry is a module under robot_ac.cli with ``register(subparsers)``; the sub-command sets ``func``.
COMMAND_MODULES = ("train", "eval", "export", "run", "log", "hil", "calibrate", "sim2sim")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robot-ac",
        description="Train, evaluate, export and deploy asymmetric actor-critic robot policies.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"robot_ac.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"robot_ac.cli.{name}":
                continue  # command not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    return _run(parser, parser.parse_args(argv))


def entry() -> None:
    """The ``robot-ac`` executable: ``main``, then, for a command that asks for it, an exit without the teardown.

    Why: with torch and its compiler loaded, Python's exit (finalizing every module and object) took 1.1-1.6 s
    here after ``robot-ac train`` had finished. A command sets ``quick_exit`` when everything it writes is closed
    by the time it returns; ``atexit`` handlers still run (multiprocessing's among them).
    """
    parser = build_parser()
    args = parser.parse_args()
    code = _run(parser, args)
    if getattr(args, "quick_exit", False):
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    entry()
