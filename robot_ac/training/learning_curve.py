"""The learning-curve PNG of a run, drawn from its ``metrics.csv``.

Run as ``python -m robot_ac.training.learning_curve METRICS_CSV PNG TITLE``: the trainer draws it in a separate
process (``RunLogger.start_learning_curve``), beside its own last steps.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

LEARNING_CURVE = "learning_curve.png"


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Rows of ``metrics.csv``, empty cells left out."""
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def plot_learning_curve(rows: list[dict[str, float]], title: str, path: Path) -> Path | None:
    """Episode return against environment steps, and success rate against time; None when there is nothing yet."""
    from matplotlib.figure import Figure  # without pyplot, whose import alone took ~0.15 s more here

    evals = [r for r in rows if "eval/success_rate" in r]
    train = [r for r in rows if "train/episode_return" in r]
    if not evals and not train:
        return None
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
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
    partial = path.with_name(path.name + ".partial")
    fig.savefig(partial, dpi=100, format="png")
    partial.replace(path)  # a reader finds the whole picture or none
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m robot_ac.training.learning_curve METRICS_CSV PNG TITLE", file=sys.stderr)
        return 2
    plot_learning_curve(read_metrics(Path(argv[0])), argv[2], Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
