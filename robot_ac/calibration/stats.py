"""Least squares with parameter covariance, 95% confidence intervals and the delta method.

Why our own thin layer: every identification step reports each coefficient with an interval, and the interval
drives the simulator's randomization range, so all steps must compute it the same way (Student-t interval from
the least-squares covariance, s^2 (J^T J)^-1; e.g. Seber & Wild, "Nonlinear Regression", 2003, ch. 5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

LEVEL = 0.95


@dataclass
class Fit:
    """Least-squares solution: parameters, their covariance, residuals and degrees of freedom."""

    params: np.ndarray
    cov: np.ndarray
    residuals: np.ndarray
    dof: int

    @property
    def sigma(self) -> float:
        """Residual standard deviation (the noise level the data imply)."""
        return float(np.sqrt(np.sum(self.residuals**2) / max(self.dof, 1)))

    def stderr(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))

    def interval(self, i: int, level: float = LEVEL) -> tuple[float, float]:
        half = t_quantile(self.dof, level) * self.stderr()[i]
        return float(self.params[i] - half), float(self.params[i] + half)


def t_quantile(dof: int, level: float = LEVEL) -> float:
    return float(stats.t.ppf(0.5 + level / 2.0, max(dof, 1)))


def linear(design: np.ndarray, y: np.ndarray) -> Fit:
    """Ordinary least squares ``y = design @ beta`` with the classical covariance s^2 (X^T X)^-1."""
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    dof = len(y) - design.shape[1]
    s2 = float(residuals @ residuals) / max(dof, 1)
    cov = s2 * np.linalg.pinv(design.T @ design)
    return Fit(beta, cov, residuals, dof)


def nonlinear(residual_fn: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, bounds=(-np.inf, np.inf),
              x_scale: np.ndarray | str = "jac", jac: Callable | str = "2-point") -> Fit:
    """Nonlinear least squares (trust region) with covariance s^2 (J^T J)^-1 at the solution."""
    sol = optimize.least_squares(residual_fn, x0, jac=jac, bounds=bounds, x_scale=x_scale, method="trf",
                                 xtol=1e-12, ftol=1e-12, gtol=1e-12, max_nfev=2000)
    jac = sol.jac
    dof = len(sol.fun) - len(x0)
    s2 = float(sol.fun @ sol.fun) / max(dof, 1)
    cov = s2 * np.linalg.pinv(jac.T @ jac)
    return Fit(np.asarray(sol.x, dtype=float), cov, np.asarray(sol.fun, dtype=float), dof)


def delta_method(fn: Callable[[np.ndarray], float], params: np.ndarray, cov: np.ndarray) -> tuple[float, float]:
    """Value and standard error of ``fn(params)`` by first-order propagation of ``cov`` (central differences)."""
    params = np.asarray(params, dtype=float)
    value = float(fn(params))
    grad = np.zeros_like(params)
    for i in range(len(params)):
        h = 1e-6 * max(abs(params[i]), np.sqrt(max(cov[i, i], 0.0)), 1e-300)
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (fn(up) - fn(down)) / (2 * h)
    return value, float(np.sqrt(max(grad @ cov @ grad, 0.0)))
