"""Thrust-stand identification: command -> rpm -> thrust and yaw torque, as the simulator models them.

The simulator maps the normalized command linearly to rpm (``rpm = rpm_min + u (rpm_max - rpm_min)``, u in
[0, 1]) and uses ``thrust = kf rpm^2`` and ``yaw torque = km rpm^2`` per rotor (robot_ac.sim.quadrotor.dynamics).
With an rpm column the three maps are fitted jointly by weighted nonlinear least squares, each channel weighted by
its own noise level, so the command is the only regressor and the rpm sensor's noise does not bias ``kf``
(errors-in-variables). Without rpm, the rpm map is taken from the robot file and only ``kf``/``km`` are fitted.
An optional battery-voltage column adds ``b2 u (V - V_ref)`` to the rpm map; estimates are at ``V_ref``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_ac.calibration import stats
from robot_ac.calibration.logs import LogError, LogTable, normalized_command
from robot_ac.calibration.results import CalibrationResult, Estimate

# Internal scaling: rpm in units of 1e4 rpm keeps the fit well conditioned (kf ~ 3e-10 N/rpm^2 otherwise).
RPM_UNIT = 1e4
MIN_POINTS = 8


@dataclass
class ThrustData:
    u: np.ndarray
    thrust: np.ndarray
    rpm: np.ndarray | None
    torque: np.ndarray | None
    dv: np.ndarray | None


def _load(table: LogTable, pwm_max: float, voltage_ref: float | None) -> tuple[ThrustData, dict]:
    command = table.first_present("command", "pwm")
    table.require(["thrust_n"])
    table.check_rows(MIN_POINTS, "a thrust curve", command)
    if table.has("time_s"):
        table.check_time("time_s")
    table.check_varies(command, "a thrust curve")
    u = normalized_command(table, command, pwm_max)
    if np.unique(np.round(u, 6)).size < 4:
        raise LogError(table.path, command, "too short to identify a thrust curve: fewer than 4 distinct commands")
    for name in ("thrust_n", "rpm", "torque_nm"):
        if table.has(name):
            table.check_not_pinned(name, what="sensor or motor saturated (flat at its maximum)")
    info: dict = {"command_column": command, "points": len(table)}
    dv = None
    if table.has("voltage_v"):
        v = table.get("voltage_v")
        ref = float(np.median(v)) if voltage_ref is None else float(voltage_ref)
        info["voltage_ref_v"] = ref
        info["voltage_range_v"] = [float(v.min()), float(v.max())]
        if np.ptp(v) > 0:
            dv = v - ref
    return ThrustData(u, table.get("thrust_n"), table.columns.get("rpm"), table.columns.get("torque_nm"), dv), info


def identify_thrust(table: LogTable, pwm_max: float = 65535.0, rpm_range: tuple[float, float] | None = None,
                    voltage_ref: float | None = None) -> tuple[CalibrationResult, ThrustData]:
    """Fit the thrust-stand log; ``rpm_range`` (rpm_min, rpm_max) is needed only when the log has no rpm."""
    data, info = _load(table, pwm_max, voltage_ref)
    if data.rpm is not None:
        est, details = _fit_with_rpm(data)
    else:
        if rpm_range is None:
            raise LogError(table.path, "rpm", "missing column and no robot rpm range given to assume")
        est, details = _fit_without_rpm(data, rpm_range)
    return CalibrationResult("thrust", str(table.path), est, info | details), data


def _fit_with_rpm(d: ThrustData) -> tuple[dict[str, Estimate], dict]:
    r = d.rpm / RPM_UNIT
    columns = [np.ones_like(d.u), d.u] + ([d.u * d.dv] if d.dv is not None else [])
    pre_rpm = stats.linear(np.column_stack(columns), r)
    pre_t = stats.linear((r * r)[:, None], d.thrust)
    sig = {"rpm": pre_rpm.sigma, "thrust": pre_t.sigma}
    if d.torque is not None:
        sig["torque"] = stats.linear((r * r)[:, None], d.torque).sigma
    sig = {k: max(v, 1e-12) for k, v in sig.items()}
    nb = len(columns)

    def model_rpm(p: np.ndarray) -> np.ndarray:
        out = p[0] + p[1] * d.u
        return out + p[2] * d.u * d.dv if d.dv is not None else out

    def residuals(p: np.ndarray) -> np.ndarray:
        m = model_rpm(p)
        parts = [(r - m) / sig["rpm"], (d.thrust - p[nb] * m * m) / sig["thrust"]]
        if d.torque is not None:
            parts.append((d.torque - p[nb + 1] * m * m) / sig["torque"])
        return np.concatenate(parts)

    x0 = np.concatenate([pre_rpm.params, pre_t.params] +
                        ([stats.linear((r * r)[:, None], d.torque).params] if d.torque is not None else []))
    fit = stats.nonlinear(residuals, x0)
    p, cov = fit.params, fit.cov
    dof = fit.dof
    t = stats.t_quantile(dof)

    def est(value: float, se: float, scale: float, unit: str) -> Estimate:
        return Estimate(value * scale, (value - t * se) * scale, (value + t * se) * scale, unit)

    se = fit.stderr()
    kf_scale = 1.0 / RPM_UNIT**2
    out = {
        "thrust_coefficient": est(p[nb], se[nb], kf_scale, "N/rpm^2"),
        "rpm_min": est(p[0], se[0], RPM_UNIT, "rpm"),
    }
    rpm_max, rpm_max_se = stats.delta_method(lambda q: q[0] + q[1], p, cov)
    out["rpm_max"] = est(rpm_max, rpm_max_se, RPM_UNIT, "rpm")
    if d.torque is not None:
        out["torque_coefficient"] = est(p[nb + 1], se[nb + 1], kf_scale, "N*m/rpm^2")
        ratio, ratio_se = stats.delta_method(lambda q: q[nb + 1] / q[nb], p, cov)
        out["yaw_torque_coefficient"] = _unsigned(est(ratio, ratio_se, 1.0, "N*m/N"))
    if d.dv is not None:
        out["rpm_voltage_sensitivity"] = est(p[2], se[2], RPM_UNIT, "rpm/V at full command")
    m = model_rpm(p)
    # Map used downstream (hover): thrust(u) = kf (b0 + b1 u)^2 with b in rpm, kf in N/rpm^2, and its covariance.
    idx = [0, 1, nb]
    scale = np.array([RPM_UNIT, RPM_UNIT, kf_scale])
    details = {
        "model": "rpm = b0 + b1 u (+ b2 u (V - V_ref)); thrust = kf rpm^2; torque = km rpm^2; u = (a + 1) / 2",
        "thrust_map": {"b0_b1_kf": (p[idx] * scale).tolist(),
                       "covariance": (cov[np.ix_(idx, idx)] * np.outer(scale, scale)).tolist()},
        "residual_std": {"rpm": float(np.std(r - m) * RPM_UNIT), "thrust_n": float(np.std(d.thrust - p[nb] * m * m))}
                        | ({"torque_nm": float(np.std(d.torque - p[nb + 1] * m * m))} if d.torque is not None else {}),
        "dof": dof,
    }
    return out, details


def _fit_without_rpm(d: ThrustData, rpm_range: tuple[float, float]) -> tuple[dict[str, Estimate], dict]:
    lo, hi = rpm_range
    r = (lo + d.u * (hi - lo)) / RPM_UNIT
    x = (r * r)[:, None]
    ft = stats.linear(x, d.thrust)
    kf_scale = 1.0 / RPM_UNIT**2
    kf_lo, kf_hi = ft.interval(0)
    out = {"thrust_coefficient": Estimate(ft.params[0] * kf_scale, kf_lo * kf_scale, kf_hi * kf_scale, "N/rpm^2",
                                          "rpm assumed from the robot file's rpm_min/rpm_max")}
    details = {"model": "thrust = kf rpm(u)^2 with rpm(u) from the robot file",
               "assumed_rpm_range": [lo, hi],
               "thrust_map": {"b0_b1_kf": [lo, hi - lo, float(ft.params[0] * kf_scale)],
                              "covariance": np.diag([0.0, 0.0, float(ft.cov[0, 0]) * kf_scale**2]).tolist()},
               "residual_std": {"thrust_n": ft.sigma}}
    if d.torque is not None:
        fq = stats.linear(x, d.torque)
        q_lo, q_hi = fq.interval(0)
        out["torque_coefficient"] = Estimate(fq.params[0] * kf_scale, q_lo * kf_scale, q_hi * kf_scale, "N*m/rpm^2")
        # Independent sensors and exact regressors: the two estimates are independent.
        ratio = fq.params[0] / ft.params[0]
        rel = np.sqrt(fq.cov[0, 0] / fq.params[0] ** 2 + ft.cov[0, 0] / ft.params[0] ** 2)
        t = stats.t_quantile(min(ft.dof, fq.dof))
        low, high = sorted((ratio * (1 - t * rel), ratio * (1 + t * rel)))
        out["yaw_torque_coefficient"] = _unsigned(Estimate(ratio, low, high, "N*m/N"))
        details["residual_std"]["torque_nm"] = fq.sigma
    return out, details


def _unsigned(e: Estimate) -> Estimate:
    """The simulator's yaw coefficient is a magnitude (spin directions are in the rotor list): drop the stand's sign."""
    if e.value >= 0:
        return e
    return Estimate(-e.value, -e.high, -e.low, e.unit, "sign dropped: the stand's torque axis points the other way")


def thrust_figures(result: CalibrationResult, data: ThrustData) -> dict:
    """Data against fit: rpm map, thrust and torque curves, and residuals."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    b0, b1, kf = result.details["thrust_map"]["b0_b1_kf"]
    uu = np.linspace(0, 1, 200)
    rpm_fit = b0 + b1 * data.u
    if data.dv is not None and "rpm_voltage_sensitivity" in result.estimates:
        rpm_fit = rpm_fit + result.estimates["rpm_voltage_sensitivity"].value * data.u * data.dv
    rpm_x = rpm_fit if data.rpm is None else data.rpm
    rr = b0 + b1 * uu
    has_torque = data.torque is not None and "torque_coefficient" in result.estimates
    fig, axes = plt.subplots(1, 4 if has_torque else 3, figsize=(17 if has_torque else 13, 4))
    if data.rpm is not None:
        axes[0].plot(data.u, data.rpm, ".", label="measured")
    axes[0].plot(uu, rr, "-", label="fit at V_ref" if data.rpm is not None else "assumed (robot file)")
    axes[0].set(xlabel="command fraction u", ylabel="rpm", title="command -> rpm")
    axes[1].plot(rpm_x, data.thrust, ".", label="measured")
    axes[1].plot(rr, kf * rr**2, "-", label=f"kf = {kf:.4g} N/rpm^2")
    axes[1].set(xlabel="rpm", ylabel="thrust [N]", title="thrust")
    if has_torque:
        km = result.estimates["torque_coefficient"].value
        axes[2].plot(rpm_x, data.torque, ".", label="measured")
        axes[2].plot(rr, km * rr**2, "-", label=f"km = {km:.4g} N m/rpm^2")
        axes[2].set(xlabel="rpm", ylabel="yaw torque [N m]", title="yaw torque")
    axes[-1].plot(data.u, data.thrust - kf * rpm_fit**2, ".", label="thrust - kf rpm_fit(u, V)^2")
    axes[-1].axhline(0, color="k", lw=0.5)
    axes[-1].set(xlabel="command fraction u", ylabel="residual [N]", title="thrust residuals")
    for ax in axes:
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return {"fit": fig}
