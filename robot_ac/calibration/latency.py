"""End-to-end latency from a HIL or flight log: command sent -> first response in the measured state.

Each large command step is an event. The response is fitted with a first-order-plus-dead-time model with one
dead time per event, ``y = g0 + g1 [u0 + sum_k du_k (1 - exp(-(t - s_k - L_k) / tau))]`` (as for the motors), so
``L_k`` is where the response starts, not where it crosses a noise threshold (which would add a noise-dependent
bias), and an event may start before the previous one has settled. The mean latency gets a Student-t interval
over events; the spread of the per-event latencies sets the simulator's actuation-delay range in control steps
(``floor(min / dt)`` .. ``ceil(max / dt)``, within a tenth of a step): the simulator delays whole steps only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_ac.calibration import stats
from robot_ac.calibration.logs import LogError, LogTable
from robot_ac.calibration.motor import crossing_guess
from robot_ac.calibration.results import CalibrationResult, Estimate

MIN_EVENTS = 3
STEP_FRACTION = 0.2   # a command change of at least this fraction of the command's range is an event
# Latencies within a tenth of a control step of a whole step count as that step (9.9 ms at 100 Hz is 1 step).
STEP_TOLERANCE = 0.1


@dataclass
class LatencyFit:
    t: np.ndarray
    y: np.ndarray
    s: np.ndarray        # event times
    model: np.ndarray
    latencies: np.ndarray
    tau: float


def identify_latency(table: LogTable, command: str = "command", response: str = "response",
                     control_rate_hz: float = 100.0) -> tuple[CalibrationResult, LatencyFit]:
    table.require(["time_s", command, response])
    table.check_rows(20, "latency", "time_s")
    t = table.check_time("time_s")
    table.check_varies(command, "latency")
    table.check_not_pinned(response, what="response saturated (flat at its maximum)")
    u, y = table.get(command), table.get(response)
    change = np.flatnonzero(np.diff(u) != 0) + 1
    big = np.abs(u[change] - u[change - 1]) >= STEP_FRACTION * np.ptp(u)
    if int(big.sum()) < MIN_EVENTS:
        raise LogError(table.path, command, f"too short to identify latency: {int(big.sum())} command step(s) of "
                                            f"at least {STEP_FRACTION:.0%} of its range, needs at least {MIN_EVENTS}")
    s, du = t[change], u[change] - u[change - 1]
    fit = _fit(t, u, y, s, du)
    lat = fit.latencies[big]
    mean, sd = float(lat.mean()), float(lat.std(ddof=1))
    half = stats.t_quantile(len(lat) - 1) * sd / math.sqrt(len(lat))
    dt = 1.0 / control_rate_hz
    steps = [int(math.floor(lat.min() / dt + STEP_TOLERANCE)), int(math.ceil(lat.max() / dt - STEP_TOLERANCE))]
    estimates = {
        "latency": Estimate(mean, mean - half, mean + half, "s", "mean over events; interval of the mean"),
        "latency_spread": Estimate(float(np.median(lat)), float(lat.min()), float(lat.max()), "s",
                                   "median, and min..max over events (not a confidence interval)"),
    }
    details = {"events": int(len(lat)), "latency_per_event_s": lat.tolist(), "latency_std_s": sd,
               "control_rate_hz": control_rate_hz, "actuation_delay_steps": steps,
               "response_time_constant_s": fit.tau, "residual_std": float(np.std(y - fit.model)),
               "command_column": command, "response_column": response}
    return CalibrationResult("latency", str(table.path), estimates, details), fit


def _fit(t: np.ndarray, u: np.ndarray, y: np.ndarray, s: np.ndarray, du: np.ndarray) -> LatencyFit:
    """Joint fit of g0, g1, tau and one dead time per command change, with the analytic Jacobian."""
    k = len(s)
    bounds = np.concatenate([np.flatnonzero(np.isin(t, s)), [len(t)]])
    g1, g0 = np.polyfit(u, y, 1)
    guesses = []
    for j in range(k):
        lo, hi = g0 + g1 * (u[bounds[j] - 1]), g0 + g1 * u[bounds[j]]
        seg = slice(bounds[j], bounds[j + 1])
        g = crossing_guess(t[seg], (y[seg] - lo) / (hi - lo), s[j]) if hi != lo else None
        if g:
            guesses.append(g)
    tau0, lat0 = np.median(guesses, axis=0) if guesses else (0.05, 0.01)
    gaps = np.diff(np.concatenate([s, [t[-1]]]))
    tau0, lat0 = max(tau0, 1e-3), min(max(lat0, 0.0), 0.5 * gaps.min())

    def parts(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = t[:, None] - s[None, :] - p[3:][None, :]
        on = e > 0
        decay = np.where(on, np.exp(-np.where(on, e, 0.0) / p[2]), 1.0)
        return e, on, decay

    def residuals(p: np.ndarray) -> np.ndarray:
        _, _, decay = parts(p)
        return y - (p[0] + p[1] * (u[0] + (du * (1 - decay)).sum(axis=1)))

    def jacobian(p: np.ndarray) -> np.ndarray:
        e, on, decay = parts(p)
        norm = u[0] + (du * (1 - decay)).sum(axis=1)
        jac = np.empty((len(t), 3 + k))
        jac[:, 0] = -1.0
        jac[:, 1] = -norm
        jac[:, 2] = p[1] * (du * decay * np.where(on, e, 0.0)).sum(axis=1) / p[2] ** 2
        jac[:, 3:] = p[1] * du * decay * on / p[2]
        return jac

    x0 = np.concatenate([[g0, g1, tau0], np.full(k, lat0)])
    lower = np.concatenate([[-np.inf, -np.inf, 1e-4], np.zeros(k)])
    upper = np.concatenate([[np.inf, np.inf, t[-1] - t[0]], gaps])
    p = stats.nonlinear(residuals, x0, bounds=(lower, upper), jac=jacobian).params
    model = y - residuals(p)
    return LatencyFit(t, y, s, model, p[3:], float(p[2]))


def latency_figures(result: CalibrationResult, fit: LatencyFit) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(1, 2, figsize=(12, 4))
    window = fit.t <= fit.s[min(4, len(fit.s) - 1)] + 0.1 * (fit.t[-1] - fit.t[0]) / max(len(fit.s), 1)
    ax.plot(fit.t[window], fit.y[window], ".", ms=2, label="response")
    ax.plot(fit.t[window], fit.model[window], "-", lw=1, label="fit")
    for s in fit.s[:5]:
        ax.axvline(s, color="k", lw=0.5)
    ax.set(xlabel="time [s]", ylabel=result.details["response_column"], title="first events (command sent: lines)")
    ax.legend(fontsize=8)
    lat = np.array(result.details["latency_per_event_s"]) * 1e3
    hist.hist(lat, bins=min(20, max(5, len(lat) // 2)))
    hist.axvline(result.estimates["latency"].value * 1e3, color="C3", label="mean")
    hist.set(xlabel="latency [ms]", ylabel="events", title="per-event latency")
    hist.legend()
    for a in (ax, hist):
        a.grid(alpha=0.3)
    fig.tight_layout()
    return {"events": fig}
