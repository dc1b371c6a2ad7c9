"""Scores of one engine run, with the same success rule as ``robot_ac.training.evaluate``.

An episode succeeds when it flies to the end and its mean position error over the last second is under 5 cm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from robot_ac.sim2sim.runner import EngineRun
from robot_ac.training.evaluate import SETTLE_THRESHOLD_M


@dataclass
class RunMetrics:
    label: str
    episodes: int
    success_rate: float
    survival_rate: float
    settle_error_median_m: float     # survivors: mean |p - target| over the last second
    settle_error_mean_m: float
    rms_position_error_m: float      # median over episodes of the per-episode RMS |p - target| (as flown)
    control_effort: float            # RMS of (command - hover command), normalized units, every step flown
    action_smoothness: float         # mean |a_t - a_(t-1)| per motor, normalized units (lower is smoother)
    divergence_median_m: float       # median over episodes of max |p_engine - p_training| (nan for the reference)

    def to_dict(self) -> dict:
        return asdict(self)


def settle_errors(run: EngineRun, steps: int, last_steps: int) -> np.ndarray:
    """Per episode: mean position error over the final ``last_steps`` (inf when it did not fly to the end)."""
    out = np.full(len(run.episodes), math.inf)
    for i, ep in enumerate(run.episodes):
        if ep.survived and len(ep.positions) == steps:
            out[i] = float(np.linalg.norm(ep.positions[-last_steps:], axis=-1).mean())
    return out


def divergence(run: EngineRun, reference: EngineRun) -> np.ndarray:
    """Per episode: largest position gap to the reference over the steps both flew (same start state)."""
    gaps = []
    for ep, ref in zip(run.episodes, reference.episodes, strict=True):
        n = min(len(ep.positions), len(ref.positions))
        gaps.append(float(np.linalg.norm(ep.positions[:n] - ref.positions[:n], axis=-1).max()) if n else math.nan)
    return np.asarray(gaps)


def score(run: EngineRun, steps: int, last_steps: int, hover_action: float,
          reference: EngineRun | None = None) -> RunMetrics:
    settle = settle_errors(run, steps, last_steps)
    alive = np.isfinite(settle)
    survivors = settle[alive]
    rms = [float(np.sqrt((np.linalg.norm(ep.positions, axis=-1) ** 2).mean())) for ep in run.episodes
           if len(ep.positions)]
    actions = [ep.actions for ep in run.episodes if len(ep.actions)]
    flat = np.concatenate(actions) if actions else np.zeros((0, 1))
    deltas = [np.abs(np.diff(a, axis=0)).reshape(-1) for a in actions if len(a) > 1]
    delta = np.concatenate(deltas) if deltas else np.zeros(0)
    gap = divergence(run, reference) if reference is not None and reference is not run else None
    return RunMetrics(
        label=run.label,
        episodes=len(run.episodes),
        success_rate=float((settle < SETTLE_THRESHOLD_M).mean()) if len(settle) else math.nan,
        survival_rate=float(alive.mean()) if len(settle) else math.nan,
        settle_error_median_m=float(np.median(survivors)) if len(survivors) else math.inf,
        settle_error_mean_m=float(np.mean(survivors)) if len(survivors) else math.inf,
        rms_position_error_m=float(np.median(rms)) if rms else math.nan,
        control_effort=float(np.sqrt(((flat - hover_action) ** 2).mean())) if flat.size else math.nan,
        action_smoothness=float(delta.mean()) if delta.size else math.nan,
        divergence_median_m=float(np.nanmedian(gap)) if gap is not None and len(gap) else math.nan,
    )
