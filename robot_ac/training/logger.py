"""Run logging: CSV and TensorBoard scalars under namespaced tags, and the learning-curve PNG."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from robot_ac.training.learning_curve import LEARNING_CURVE, read_metrics


class RunLogger:
    """Writes ``metrics.csv`` (one row per log call, columns grow as new keys appear) and TensorBoard events."""

    def __init__(self, out_dir: Path, tensorboard: bool = True) -> None:
        self.out_dir = out_dir
        self.csv_path = out_dir / "metrics.csv"
        self.rows: list[dict[str, float]] = []
        if self.csv_path.is_file():  # resuming: keep the earlier rows
            self.rows = read_metrics(self.csv_path)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(out_dir / "tensorboard"))
            except ImportError:
                self.writer = None

    def log(self, step: int, values: dict[str, float]) -> None:
        row = {"env_steps": float(step), **{k: float(v) for k, v in values.items()}}
        self.rows.append(row)
        keys: list[str] = []
        for r in self.rows:
            keys.extend(k for k in r if k not in keys)
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.csv_path)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def start_learning_curve(self, title: str) -> subprocess.Popen:
        """Draw ``learning_curve.png`` from ``metrics.csv`` in a separate process; ``finish_learning_curve`` waits.

        Why a process: importing matplotlib and drawing took ~0.9-1.2 s of ``robot-ac train``'s exit here, on one
        core, while the other sat idle; drawn beside the final checkpoint and the export, it costs the run less.
        """
        package_root = str(Path(__file__).resolve().parents[2])  # importable even where robot_ac is not installed
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
        return subprocess.Popen([sys.executable, "-m", "robot_ac.training.learning_curve", str(self.csv_path),
                                 str(self.out_dir / LEARNING_CURVE), title], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)

    @staticmethod
    def finish_learning_curve(process: subprocess.Popen) -> None:
        """Wait for the drawing process; a failure is reported, not raised: the run's results are already saved."""
        _, err = process.communicate()
        if process.returncode != 0:
            print(f"robot-ac: warning: the learning curve was not drawn:\n{err[-2000:]}", file=sys.stderr)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
