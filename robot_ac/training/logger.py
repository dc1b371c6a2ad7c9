"""Run logging: CSV and TensorBoard scalars under namespaced tags, and the learning-curve PNG."""

from __future__ import annotations

import csv
import math
from pathlib import Path


class RunLogger:
    """Writes ``metrics.csv`` (one row per log call, columns grow as new keys appear) and TensorBoard events."""

    def __init__(self, out_dir: Path, tensorboard: bool = True) -> None:
        self.out_dir = out_dir
        self.csv_path = out_dir / "metrics.csv"
        self.rows: list[dict[str, float]] = []
        if self.csv_path.is_file():  # resuming: keep the earlier rows
            with self.csv_path.open() as f:
                self.rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
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

    def plot_learning_curve(self, title: str) -> Path | None:
        """``learning_curve.png``: episode return and success rate against environment steps and time."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        evals = [r for r in self.rows if "eval/success_rate" in r]
        train = [r for r in self.rows if "train/episode_return" in r]
        if not evals and not train:
            return None
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        if train:
            axes[0].plot([r["env_steps"] for r in train], [r["train/episode_return"] for r in train])
        axes[0].set(xlabel="environment steps", ylabel="mean episode return", title="training return")
        if evals:
            t = [r.get("time/seconds", 0.0) for r in evals]
            axes[1].plot(t, [100 * r["eval/success_rate"] for r in evals], "o-", label="success")
            complete = [math.isnan(r.get("eval/stopped_at_s", math.nan)) for r in evals]
            axes[1].plot([x for x, c in zip(t, complete, strict=True) if c],
                         [100 * r["eval/survival_rate"] for r, c in zip(evals, complete, strict=True) if c],
                         "s--", label="survival")
            if not all(complete):  # stopped once more than 5% of episodes had terminated
                stopped = [x for x, c in zip(t, complete, strict=True) if not c]
                axes[1].plot(stopped, [0.0] * len(stopped), "x", color="gray", clip_on=False,
                             label="stopped early: over 5% terminated")
            axes[1].axhline(95, color="gray", lw=0.8, ls=":", label="criterion 95%")
            axes[1].legend()
        axes[1].set(xlabel="wall-clock seconds", ylabel="% of 1000 episodes", title="evaluation", ylim=(0, 100))
        fig.suptitle(title)
        fig.tight_layout()
        path = self.out_dir / "learning_curve.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
