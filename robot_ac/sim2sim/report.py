"""The report folder a person reads: ``report.md`` (side-by-side table), ``summary.json`` and PNG plots.

Written into a temporary folder beside the destination and moved into place at the end, so an interrupted run
never leaves a half-written report under the final name.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from robot_ac.sim2sim.metrics import RunMetrics, score, settle_errors
from robot_ac.sim2sim.runner import Sim2SimResult
from robot_ac.training.evaluate import SETTLE_THRESHOLD_M

# (attribute, row label, formatter)
ROWS = (
    ("success_rate", "success rate", lambda v: f"{v:.1%}"),
    ("survival_rate", "survival", lambda v: f"{v:.1%}"),
    ("settle_error_median_m", "settle error, median (cm)", lambda v: f"{v * 100:.2f}"),
    ("settle_error_mean_m", "settle error, mean (cm)", lambda v: f"{v * 100:.2f}"),
    ("rms_position_error_m", "RMS position error, median (cm)", lambda v: f"{v * 100:.2f}"),
    ("control_effort", "control effort, RMS(a - hover)", lambda v: f"{v:.4f}"),
    ("action_smoothness", "action smoothness, mean abs(da)", lambda v: f"{v:.4f}"),
    ("divergence_median_m", "divergence from training sim, median max (cm)", lambda v: f"{v * 100:.2f}"),
)
PLOTTED_EPISODES = 3


def compute_metrics(result: Sim2SimResult) -> list[RunMetrics]:
    last = max(1, round(result.task.control_rate_hz))
    return [score(run, result.steps, min(last, result.steps), result.hover_action, result.reference)
            for run in result.runs]


def _fmt(fn, value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        "inf" if math.isinf(value) else fn(value))


def table(metrics: list[RunMetrics]) -> str:
    """Markdown table: one row per metric, one column per engine run."""
    lines = ["| metric | " + " | ".join(m.label for m in metrics) + " |",
             "|---|" + "---:|" * len(metrics)]
    for attr, label, fn in ROWS:
        lines.append(f"| {label} | " + " | ".join(_fmt(fn, getattr(m, attr)) for m in metrics) + " |")
    return "\n".join(lines)


def write_report(result: Sim2SimResult, out: Path) -> tuple[Path, list[RunMetrics]]:
    """Write the report folder ``out`` (replacing an older one) and return its path and the metrics."""
    out = Path(out)
    metrics = compute_metrics(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        plots = {
            "trajectories.png": _plot_trajectories,
            "error_histograms.png": _plot_error_histograms,
            "motor_commands.png": _plot_motor_commands,
        }
        for name, plot in plots.items():
            plot(result, tmp / name)
        (tmp / "summary.json").write_text(json.dumps(_summary(result, metrics), indent=2, default=_json_default))
        (tmp / "report.md").write_text(_markdown(result, metrics, list(plots)))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out, metrics


def _json_default(value):
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def _summary(result: Sim2SimResult, metrics: list[RunMetrics]) -> dict:
    def clean(d: dict) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

    return {
        "bundle": str(result.bundle), "robot": result.robot, "task": result.task.task, "engine": result.engine,
        "episodes": len(result.reference.episodes), "seconds": result.steps * result.task.dt, "seed": result.seed,
        "physics_hz": result.physics_hz, "settle_threshold_m": SETTLE_THRESHOLD_M,
        "runs": [clean(m.to_dict()) | {"engine": r.engine, "effects": list(r.effects.active),
                                        "end_reasons": _end_reasons(r)}
                 for m, r in zip(metrics, result.runs, strict=True)],
    }


def _end_reasons(run) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ep in run.episodes:
        key = ep.end_reason or "flew to the end"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _markdown(result: Sim2SimResult, metrics: list[RunMetrics], plots: list[str]) -> str:
    ref = metrics[0]
    gaps = [f"- **{m.label}**: success {m.success_rate:.1%} vs {ref.success_rate:.1%} in the training sim "
            f"({(m.success_rate - ref.success_rate) * 100:+.1f} points)" for m in metrics[1:]]
    fx = result.runs[-1].effects
    effect_notes = []
    for run in result.runs[1:]:
        for name in run.effects.active:
            note = {"drag": f"rotor drag {fx.drag_coeff_xy:g}/{fx.drag_coeff_z:g} kg/rad (xy/z)",
                    "ground": f"ground effect, floor {fx.ground_distance:g} m below the target (with contact)",
                    "latency": f"sensor latency {fx.latency_s * 1000:g} ms",
                    "jitter": f"control period jitter +-{fx.jitter_s * 1000:g} ms"}[name]
            if note not in effect_notes:
                effect_notes.append(note)
    reasons = "\n".join(f"- {run.label}: "
                        + ", ".join(f"{k}: {v}" for k, v in _end_reasons(run).items()) for run in result.runs)
    return f"""# Sim-to-sim report: {result.bundle.name}

Robot `{result.robot}`, task `{result.task.task}`, {len(result.reference.episodes)} episodes of
{result.steps * result.task.dt:g} s from the same start states (training simulator's reset, seed {result.seed}),
nominal robot, no domain randomization and no observation noise in either engine. Both fly the deployment
controller (`robot_ac.runtime.PolicyController`, envelope checks off) at {result.task.control_rate_hz:g} Hz;
{result.engine} physics at {result.physics_hz:g} Hz.
Success: flew to the end (never beyond {result.task.termination.position_limit:g} m on any axis) and mean position
error over the last second below {SETTLE_THRESHOLD_M * 100:g} cm.

Unmodelled effects flown (each in the column that names it): {"; ".join(effect_notes) if effect_notes else "none"}.

{table(metrics)}

{chr(10).join(gaps)}

How episodes ended:
{reasons}

![trajectories]({plots[0]})

![error histograms]({plots[1]})

![motor commands]({plots[2]})
"""


def _figure(rows: int, cols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    return plt, fig, axes


def _plot_trajectories(result: Sim2SimResult, path: Path) -> None:
    shown = min(PLOTTED_EPISODES, len(result.reference.episodes))
    plt, fig, axes = _figure(3, shown, (4.5 * shown, 7))
    for col in range(shown):
        for run in result.runs:
            ep = run.episodes[col]
            for row in range(3):
                axes[row, col].plot(ep.times, ep.positions[:, row] * 100, label=run.label,
                                    linestyle="-" if run is result.reference else "--")
        axes[0, col].set_title(f"episode {col}")
        axes[2, col].set_xlabel("time (s)")
    for row, axis in enumerate("xyz"):
        axes[row, 0].set_ylabel(f"{axis} - target (cm)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_error_histograms(result: Sim2SimResult, path: Path) -> None:
    plt, fig, axes = _figure(1, 2, (11, 4))
    last = min(max(1, round(result.task.control_rate_hz)), result.steps)
    settle_all = [settle_errors(run, result.steps, last) * 100 for run in result.runs]
    finite = np.concatenate([s[np.isfinite(s)] for s in settle_all] + [np.zeros(1)])
    bins = np.linspace(0.0, max(float(finite.max()), SETTLE_THRESHOLD_M * 100) * 1.05, 30)
    for run, settle in zip(result.runs, settle_all, strict=True):
        axes[0, 0].hist(settle[np.isfinite(settle)], bins=bins, histtype="step", label=run.label)
        errors = np.concatenate([np.linalg.norm(ep.positions, axis=-1) for ep in run.episodes]) * 100
        axes[0, 1].hist(errors, bins=40, histtype="step", label=run.label, density=True)
    axes[0, 0].axvline(SETTLE_THRESHOLD_M * 100, color="k", linestyle=":", label="success threshold")
    axes[0, 0].set_xlabel("settle error: mean |p - target| over the last second (cm)")
    axes[0, 0].set_ylabel("episodes")
    axes[0, 1].set_xlabel("position error at every step (cm)")
    axes[0, 1].set_ylabel("density")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_motor_commands(result: Sim2SimResult, path: Path) -> None:
    motors = result.reference.episodes[0].actions.shape[-1] if len(result.reference.episodes[0].actions) else 4
    plt, fig, axes = _figure(motors, 1, (9, 1.8 * motors + 1))
    for run in result.runs:
        ep = run.episodes[0]
        for m in range(motors):
            if len(ep.actions):
                axes[m, 0].plot(ep.times, ep.actions[:, m], label=run.label,
                                linestyle="-" if run is result.reference else "--")
    for m in range(motors):
        axes[m, 0].set_ylabel(f"motor {m}")
        axes[m, 0].axhline(result.hover_action, color="k", linewidth=0.5, linestyle=":")
    axes[0, 0].set_title("normalized motor commands, episode 0 (dotted: hover)")
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
