"""Motor dynamics from step-response logs: first-order time constant and pure delay per motor.

The simulator's motor is ``rpm' = (rpm_cmd - rpm) / tau`` (robot_ac.sim.quadrotor.dynamics); a real ESC adds a
pure delay ``d``. For a held (piecewise-constant) command the response is a sum of delayed exponentials,
``rpm(t) = g0 + g1 [u0 + sum_k du_k (1 - exp(-(t - s_k - d) / tau)) 1(t > s_k + d)]``, which is fitted to every
sample of the log by nonlinear least squares (parameters tau, d, g0, g1; interval from the covariance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_ac.calibration import stats
from robot_ac.calibration.logs import LogError, LogTable, normalized_command, numbered
from robot_ac.calibration.results import CalibrationResult, Estimate

MIN_SETTLE_TIME_CONSTANTS = 3.0   # a step must be held this many time constants to show its end value
MAX_RELATIVE_HALF_WIDTH = 0.25    # wider intervals mean the log cannot pin the time constant down


def step_model(t: np.ndarray, s: np.ndarray, du: np.ndarray, u0: float, tau: float, d: float) -> np.ndarray:
    """First-order response to held steps ``du`` sent at times ``s``, after a pure delay ``d``."""
    e = np.maximum(t[:, None] - s[None, :] - d, 0.0)
    return u0 + (du[None, :] * -np.expm1(-e / tau)).sum(axis=1)


def crossing_guess(t: np.ndarray, z: np.ndarray, start: float) -> tuple[float, float] | None:
    """(tau, delay) from the 10% and 63.2% crossings of a normalized step response z (0 -> 1)."""
    after = t >= start
    i10 = np.flatnonzero(after & (z >= 0.1))
    i63 = np.flatnonzero(after & (z >= 1 - np.exp(-1)))
    if not i10.size or not i63.size:
        return None
    t10, t63 = t[i10[0]] - start, t[i63[0]] - start
    tau = max((t63 - t10) / (1 - np.log(1 / 0.9)), 1e-4)
    return tau, max(t10 - np.log(1 / 0.9) * tau, 0.0)


@dataclass
class MotorFit:
    name: str
    t: np.ndarray
    rpm: np.ndarray
    model: np.ndarray
    fit: stats.Fit


def _motor_columns(table: LogTable) -> list[tuple[str, str]]:
    pairs = []
    for prefix in ("command", "pwm"):
        for c in numbered(table, prefix):
            pairs.append((c, "rpm_" + c.split("_")[1]))
    if not pairs and table.has("rpm"):
        pairs = [(table.first_present("command", "pwm"), "rpm")]
    if not pairs:
        raise LogError(table.path, "command_0", "missing column (needs command_<i> or pwm_<i> with rpm_<i>, or "
                                                "command/pwm with rpm)")
    table.require([r for _, r in pairs])
    return pairs


def identify_motor(table: LogTable, pwm_max: float = 65535.0) -> tuple[CalibrationResult, list[MotorFit]]:
    table.require(["time_s"])
    table.check_rows(50, "motor dynamics", "time_s")
    t = table.check_time("time_s")
    estimates: dict[str, Estimate] = {}
    fits = []
    details: dict = {"model": "rpm = g0 + g1 * first_order(u(t - d), tau); u = command fraction in [0, 1]",
                     "motors": {}}
    for cmd_name, rpm_name in _motor_columns(table):
        table.check_not_pinned(rpm_name, what="rpm saturated (motor at its maximum speed)")
        u = normalized_command(table, cmd_name, pwm_max)
        rpm = table.get(rpm_name)
        mf = _fit_one(table, t, u, rpm, cmd_name, rpm_name)
        fits.append(mf)
        k = cmd_name.split("_")[1] if "_" in cmd_name else "0"
        tq = stats.t_quantile(mf.fit.dof)
        p, se = mf.fit.params, mf.fit.stderr()
        estimates[f"motor_time_constant_{k}"] = Estimate(p[0], p[0] - tq * se[0], p[0] + tq * se[0], "s")
        estimates[f"motor_delay_{k}"] = Estimate(p[1], max(p[1] - tq * se[1], 0.0), p[1] + tq * se[1], "s")
        details["motors"][k] = {"rpm_at_u0": float(p[2]), "rpm_at_u1": float(p[2] + p[3]),
                                "residual_std_rpm": mf.fit.sigma, "samples": len(t)}
    for quantity in ("motor_time_constant", "motor_delay"):
        per = [e for name, e in estimates.items() if name.startswith(quantity + "_")]
        estimates[quantity] = Estimate(float(np.mean([e.value for e in per])), min(e.low for e in per),
                                       max(e.high for e in per), "s",
                                       "mean over motors; interval spans every motor's interval")
    return CalibrationResult("motor", str(table.path), estimates, details), fits


def _fit_one(table: LogTable, t: np.ndarray, u: np.ndarray, rpm: np.ndarray, cmd_name: str,
             rpm_name: str) -> MotorFit:
    change = np.flatnonzero(np.diff(u) != 0) + 1
    if change.size < 2:
        raise LogError(table.path, cmd_name, f"too short to identify motor dynamics: {change.size} command step(s), "
                                             "needs at least 2")
    s, du = t[change], u[change] - u[change - 1]
    bounds = np.concatenate([[0], change, [len(t)]])
    # Steady state of each held segment (its last quarter) gives the command -> rpm map to start from.
    u_seg, rpm_seg = [], []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        q = a + max(1, (b - a) * 3 // 4)
        u_seg.append(u[a])
        rpm_seg.append(np.mean(rpm[q:b]) if b > q else rpm[a])
    g1, g0 = np.polyfit(u_seg, rpm_seg, 1) if np.ptp(u_seg) > 0 else (1.0, 0.0)
    guesses = []
    for j, i in enumerate(change):
        lo, hi = g0 + g1 * u[i - 1], g0 + g1 * u[i]
        if abs(hi - lo) < 1e-9:
            continue
        seg = slice(i, bounds[j + 2])
        g = crossing_guess(t[seg], (rpm[seg] - lo) / (hi - lo), t[i])
        if g:
            guesses.append(g)
    tau0, d0 = np.median(guesses, axis=0) if guesses else (0.05, 0.005)
    hold = float(np.min(np.diff(np.concatenate([[t[0]], s, [t[-1]]]))))

    def residuals(p: np.ndarray) -> np.ndarray:
        return rpm - (p[2] + p[3] * step_model(t, s, du, u[0], p[0], p[1]))

    span = t[-1] - t[0]
    tau0, d0 = float(np.clip(tau0, 1e-3, 0.5 * span)), float(np.clip(d0, 0.0, 0.5 * hold))
    fit = stats.nonlinear(residuals, np.array([tau0, d0, g0, g1]),
                          bounds=([1e-4, 0.0, -np.inf, -np.inf], [span, hold, np.inf, np.inf]))
    tau = fit.params[0]
    if hold < MIN_SETTLE_TIME_CONSTANTS * tau:
        raise LogError(table.path, "time_s", f"too short to identify motor dynamics for {rpm_name}: steps held "
                                             f"{hold:.3g} s, need at least {MIN_SETTLE_TIME_CONSTANTS:g} time "
                                             f"constants ({MIN_SETTLE_TIME_CONSTANTS * tau:.3g} s)")
    lo, hi = fit.interval(0)
    if (hi - lo) / 2 > MAX_RELATIVE_HALF_WIDTH * tau:
        raise LogError(table.path, rpm_name, f"too short or too noisy to identify the time constant: "
                                             f"{tau:.3g} s with 95% interval [{lo:.3g}, {hi:.3g}]")
    model = fit.params[2] + fit.params[3] * step_model(t, s, du, u[0], tau, fit.params[1])
    return MotorFit(rpm_name, t, rpm, model, fit)


def motor_figures(result: CalibrationResult, fits: list[MotorFit]) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(fits), 1, figsize=(11, 2.6 * len(fits)), squeeze=False)
    for ax, mf in zip(axes[:, 0], fits, strict=True):
        ax.plot(mf.t, mf.rpm, ".", ms=2, label=f"{mf.name} measured")
        ax.plot(mf.t, mf.model, "-", lw=1, label=f"fit: tau {mf.fit.params[0] * 1e3:.1f} ms, "
                                                 f"delay {mf.fit.params[1] * 1e3:.1f} ms")
        ax.set(ylabel="rpm")
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time [s]")
    fig.tight_layout()
    return {"steps": fig}
