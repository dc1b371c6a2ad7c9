"""IMU gyroscope and accelerometer bias and white-noise density from a static, level log; Allan deviation.

Noise density N is the continuous-time white-noise density (units/sqrt(Hz)) with discrete std sigma_d = N /
sqrt(dt), the convention of IEEE Std 952 and the Kalibr "IMU Noise Model" wiki page; on an Allan deviation plot it
is the -1/2 slope line sigma(tau) = N / sqrt(tau). It is estimated from first differences (std(diff) / sqrt(2)),
which slow bias drift does not inflate; its interval is chi-square with the effective degrees of freedom of a
differenced series (n / 1.5). Bias is the mean minus the expected reading (0 for gyros, gravity on +z for a level
accelerometer); the earth's rotation (7.3e-5 rad/s) is below what a MEMS gyro resolves and is ignored.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sstats

from robot_ac.calibration import stats
from robot_ac.calibration.logs import LogError, LogTable
from robot_ac.calibration.results import CalibrationResult, Estimate

GYRO = ("gyro_x", "gyro_y", "gyro_z")
ACCEL = ("accel_x", "accel_y", "accel_z")
MIN_SECONDS = 10.0
MIN_SAMPLES = 1000


def allan_deviation(x: np.ndarray, dt: float, points: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Allan deviation at log-spaced cluster times up to a tenth of the log."""
    n = len(x)
    theta = np.concatenate([[0.0], np.cumsum(x) * dt])
    ms = np.unique(np.logspace(0, math.log10(max(n // 10, 2)), points).astype(int))
    adev = np.empty(len(ms))
    for j, m in enumerate(ms):
        d = theta[2 * m:] - 2 * theta[m:-m] + theta[: -2 * m]
        adev[j] = math.sqrt(np.mean(d * d) / (2 * (m * dt) ** 2))
    return ms * dt, adev


def identify_imu(table: LogTable, gravity: float = 9.81,
                 with_allan: bool = True) -> tuple[CalibrationResult, dict[str, tuple[np.ndarray, np.ndarray]]]:
    table.require(["time_s", *GYRO, *ACCEL])
    table.check_rows(MIN_SAMPLES, "IMU noise", "time_s")
    t = table.check_time("time_s", MIN_SECONDS)
    dt = float(np.median(np.diff(t)))
    for name in (*GYRO, *ACCEL):
        table.check_not_pinned(name, what="sensor saturated (flat at its full-scale value)")
        table.check_varies(name, "noise (the noise is below one count: quantization hides it)")
    norm = float(np.linalg.norm([table.get(a).mean() for a in ACCEL]))
    if abs(norm - gravity) > 0.1 * gravity:
        raise LogError(table.path, "accel_z", f"not a static log: mean specific force {norm:.3g} m/s^2, expected "
                                              f"gravity {gravity:g} m/s^2")
    expected = dict.fromkeys(GYRO + ACCEL, 0.0) | {"accel_z": gravity}
    n = len(t)
    dof_eff = (n - 1) / 1.5
    chi_lo, chi_hi = sstats.chi2.ppf([0.975, 0.025], dof_eff)
    tq = stats.t_quantile(n - 1)
    estimates: dict[str, Estimate] = {}
    allan: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    details: dict = {"sample_rate_hz": 1.0 / dt, "samples": n, "gravity": gravity, "bias_instability": {}}
    for name in GYRO + ACCEL:
        x = table.get(name)
        kind, axis = name.split("_")
        unit = "rad/s" if kind == "gyro" else "m/s^2"
        sigma = float(np.std(np.diff(x), ddof=1) / math.sqrt(2))
        bias = float(x.mean() - expected[name])
        half = tq * sigma / math.sqrt(n)
        estimates[f"{kind}_bias_{axis}"] = Estimate(bias, bias - half, bias + half, unit)
        density = sigma * math.sqrt(dt)
        estimates[f"{kind}_noise_density_{axis}"] = Estimate(
            density, density * math.sqrt(dof_eff / chi_lo), density * math.sqrt(dof_eff / chi_hi), f"{unit}/sqrt(Hz)")
        if with_allan:
            taus, adev = allan_deviation(x, dt)
            allan[name] = (taus, adev)
            # Bias instability: Allan minimum / 0.664 (IEEE Std 952 flicker-floor convention).
            details["bias_instability"][name] = float(adev.min() / 0.664)
    return CalibrationResult("imu", str(table.path), estimates, details), allan


def imu_figures(result: CalibrationResult, allan: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, group, unit in ((axes[0], GYRO, "rad/s"), (axes[1], ACCEL, "m/s^2")):
        for i, name in enumerate(group):
            if name not in allan:
                continue
            taus, adev = allan[name]
            kind, axis = name.split("_")
            n = result.estimates[f"{kind}_noise_density_{axis}"].value
            ax.loglog(taus, adev, "o-", ms=3, color=f"C{i}", label=f"{name}")
            ax.loglog(taus, n / np.sqrt(taus), "--", lw=1, color=f"C{i}", label=f"N/sqrt(tau), N={n:.3g}")
        ax.set(xlabel="cluster time tau [s]", ylabel=f"Allan deviation [{unit}]", title=f"{group[0][:-2]} Allan")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return {"allan": fig}
