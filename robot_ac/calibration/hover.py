"""Mass and in-flight thrust scale from a hover log (motor commands + IMU specific force), via the thrust curve.

The accelerometer measures the specific force, whose body-z part in flight is ``s * sum_i kf rpm_i^2 / m`` (no
other force along body z in the simulator). Motor commands become rpm through the thrust-stand map and the motor
model (first-order lag ``tau`` and delay from ``robot-ac calibrate motor``), so the log identifies only the
ratio ``s / m``: forces need one absolute reference. Either the stand is trusted (``s = 1``) and the log gives the
mass, or the drone is weighed (``--mass``) and the log gives the thrust scale ``s`` and the in-flight thrust
coefficient ``s kf``. Intervals combine the regression with the thrust-curve covariance (delta method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_ac.calibration import stats
from robot_ac.calibration.logs import LogError, LogTable, normalized_command, numbered
from robot_ac.calibration.results import CalibrationResult, Estimate

MIN_SECONDS = 5.0
SKIP_SECONDS = 1.0   # the motor filter starts from the first command; skip its transient


@dataclass
class HoverData:
    t: np.ndarray
    accel_z: np.ndarray
    thrust_stand: np.ndarray  # predicted stand thrust sum [N] from the fitted map
    beta: float               # fitted specific force per N of stand thrust


def filtered_commands(t: np.ndarray, u: np.ndarray, tau: float, delay_s: float) -> np.ndarray:
    """Rotor-speed command fraction seen by the rotor: ``u`` delayed (whole samples) and first-order lagged."""
    dt = np.diff(t)
    shift = int(round(delay_s / float(np.median(dt)))) if delay_s > 0 else 0
    ud = np.concatenate([np.repeat(u[:1], shift, axis=0), u[: len(u) - shift]]) if shift else u
    a = np.exp(-dt / tau)
    out = np.empty_like(ud)
    out[0] = ud[0]
    for k in range(len(dt)):
        out[k + 1] = a[k] * out[k] + (1 - a[k]) * ud[k]
    return out


def identify_hover(table: LogTable, thrust_map: list[float], thrust_map_cov: list[list[float]], tau: float,
                   delay_s: float = 0.0, mass: float | None = None, accel_bias_z: tuple[float, float] = (0.0, 0.0),
                   pwm_max: float = 65535.0, gravity: float = 9.81) -> tuple[CalibrationResult, HoverData]:
    """``thrust_map`` = (b0, b1, kf): stand thrust per rotor ``kf (b0 + b1 u)^2``; ``accel_bias_z`` = (bias, se)."""
    table.require(["time_s", "accel_z"])
    table.check_rows(100, "mass and thrust scale", "time_s")
    t = table.check_time("time_s", MIN_SECONDS + SKIP_SECONDS)
    commands = numbered(table, "command") or numbered(table, "pwm")
    if not commands:
        raise LogError(table.path, "command_0", "missing column (needs command_<i> or pwm_<i> per motor)")
    for c in commands:
        limit = pwm_max if c.startswith("pwm") else 1.0
        table.check_not_pinned(c, limit=limit, what="motor saturated (command at full scale)")
        zeros = int(np.count_nonzero(table.get(c) <= (0.0 if c.startswith("pwm") else -1.0)))
        if zeros >= 3 and zeros > 0.01 * len(t):
            raise LogError(table.path, c, f"motor saturated (command at zero) in {zeros} of {len(t)} samples")
    table.check_not_pinned("accel_z", what="accelerometer saturated (flat at its full-scale value)")
    u = np.column_stack([normalized_command(table, c, pwm_max) for c in commands])
    uf = filtered_commands(t, u, tau, delay_s)
    keep = t >= t[0] + SKIP_SECONDS
    f = table.get("accel_z")[keep] - accel_bias_z[0]
    uk = uf[keep]
    theta = np.asarray(thrust_map, dtype=float)
    cov_theta = np.asarray(thrust_map_cov, dtype=float)

    def stand_thrust(p: np.ndarray) -> np.ndarray:
        return (p[2] * (p[0] + p[1] * uk) ** 2).sum(axis=1)

    s = stand_thrust(theta)
    reg = stats.linear(s[:, None], f)
    beta = float(reg.params[0])
    if beta <= 0:
        raise LogError(table.path, "accel_z", "specific force does not grow with thrust: check sign and units (m/s^2)")

    def beta_of(p: np.ndarray) -> float:
        x = stand_thrust(p)
        return float(x @ f / (x @ x))

    # Variance of beta: regression noise, plus thrust-curve uncertainty, plus the accelerometer bias estimate.
    _, se_map = stats.delta_method(beta_of, theta, cov_theta)
    se_bias = accel_bias_z[1] * float(s.sum() / (s @ s))
    se_beta = float(np.sqrt(reg.stderr()[0] ** 2 + se_map**2 + se_bias**2))
    tq = stats.t_quantile(reg.dof)
    kf = theta[2]
    estimates: dict[str, Estimate] = {}
    if mass is None:
        # s = 1: mass = 1 / beta.
        m = 1.0 / beta
        rel = se_beta / beta
        estimates["mass"] = Estimate(m, m / (1 + tq * rel), m / max(1 - tq * rel, 1e-9), "kg",
                                     "assumes in-flight thrust equals the stand's (thrust scale 1)")
    else:
        scale = beta * mass
        half = tq * se_beta * mass
        estimates["thrust_scale"] = Estimate(scale, scale - half, scale + half, "1", f"with weighed mass {mass:g} kg")
        # s kf depends on the map only through rpm: propagate beta * kf * m directly.
        value, se_kf = stats.delta_method(lambda p: beta_of(p) * p[2] * mass, theta, cov_theta)
        se_total = float(np.sqrt(se_kf**2 + (reg.stderr()[0] * kf * mass) ** 2 + (se_bias * kf * mass) ** 2))
        estimates["thrust_coefficient"] = Estimate(value, value - tq * se_total, value + tq * se_total, "N/rpm^2",
                                                   "in flight: thrust scale x stand coefficient")
    residual = f - beta * s
    # Consistency with the thrust curve: the command the curve says holds this drone (thrust = m g / s) against the
    # mean command actually flown (the flight climbs and descends, so they agree only on average).
    m_used = mass if mass is not None else 1.0 / beta
    s_used = beta * mass if mass is not None else 1.0
    rpm_hover = np.sqrt(m_used * gravity / (uk.shape[1] * s_used * kf))
    details_consistency = {"hover_command_from_thrust_curve": float((rpm_hover - theta[0]) / theta[1]),
                           "mean_command_flown": float(uk.mean())}
    details = details_consistency | {
               "samples_used": int(keep.sum()), "motor_time_constant_s": tau, "motor_delay_s": delay_s,
               "specific_force_per_stand_newton": beta, "residual_std_m_s2": float(np.std(residual)),
               "mean_command_fraction": float(u.mean()), "accel_bias_z_removed": accel_bias_z[0],
               "mass_given_kg": mass}
    return CalibrationResult("hover", str(table.path), estimates, details), HoverData(t[keep], f, s, beta)


def hover_figures(result: CalibrationResult, data: HoverData) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, sc) = plt.subplots(1, 2, figsize=(12, 4))
    ax.plot(data.t, data.accel_z, ".", ms=2, label="accel z (bias removed)")
    ax.plot(data.t, data.beta * data.thrust_stand, "-", lw=1, label="fit: stand thrust x s / m")
    ax.set(xlabel="time [s]", ylabel="specific force [m/s^2]", title="hover: IMU vs thrust curve")
    sc.plot(data.thrust_stand, data.accel_z, ".", ms=2, label="samples")
    x = np.linspace(data.thrust_stand.min(), data.thrust_stand.max(), 10)
    sc.plot(x, data.beta * x, "-", label=f"slope s/m = {data.beta:.4g} 1/kg")
    sc.set(xlabel="predicted stand thrust, all rotors [N]", ylabel="specific force [m/s^2]")
    for a in (ax, sc):
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    return {"fit": fig}
