"""Unmodelled effects an independent engine can add: what the training simulator leaves out on purpose.

Each is off unless named in ``--effects``; the numbers are the defaults of ``EffectSettings`` with their source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

EFFECT_NAMES = ("drag", "ground", "latency", "jitter")


class EffectError(ValueError):
    """An unknown effect name on the command line."""


@dataclass(frozen=True)
class EffectSettings:
    """Which effects are on, and their magnitudes."""

    drag: bool = False
    ground: bool = False
    latency: bool = False
    jitter: bool = False
    # Rotor (blade-flapping) drag, proportional to the summed rotor speed (rad/s) times the body-frame velocity.
    # Coefficients from gym-pybullet-drones cf2x.urdf (drag_coeff_xy 9.1785e-7, drag_coeff_z 10.311e-7 kg/rad),
    # which cites Forster 2015 (ETH, "System Identification of the Crazyflie 2.0 Nano Quadrocopter").
    drag_coeff_xy: float = 9.1785e-7
    drag_coeff_z: float = 10.311e-7
    # Ground effect: extra thrust per rotor kf rpm^2 * c * (r / 4h)^2, the image-rotor model of Cheeseman & Bennett
    # (1955) with c and r from gym-pybullet-drones cf2x.urdf (gnd_eff_coeff 11.36859, prop_radius 2.31348e-2 m,
    # height clipped below at 0.0135 m). The floor sits ``ground_distance`` below the target (our choice: start
    # states reach 0.2 m below the target, so the lowest start is 0.1 m over the floor, where the effect is ~5%).
    ground_effect_coeff: float = 11.36859
    propeller_radius: float = 2.31348e-2
    ground_min_height: float = 0.0135
    ground_distance: float = 0.3
    # Sensor latency: the controller sees the state from this long ago. 15 ms is our assumption for a motion-capture
    # plus radio link (the training simulator's delay randomization covers 0-10 ms of actuation delay only).
    latency_s: float = 0.015
    # Control-tick jitter: each control period is drawn uniformly in [T - j, T + j] and rounded to physics steps,
    # as when the controller is clocked by an IMU interrupt whose rate drifts. 2 ms is our assumption.
    jitter_s: float = 0.002

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(name for name in EFFECT_NAMES if getattr(self, name))

    def label(self) -> str:
        return "+".join(self.active) if self.active else "none"


def parse_effects(text: str | None, base: EffectSettings | None = None) -> EffectSettings:
    """``"drag,ground"`` -> settings with those on; empty, None or ``none`` -> all off."""
    settings = base or EffectSettings()
    if not text or text.strip().lower() == "none":
        return settings
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in EFFECT_NAMES]
    if unknown:
        raise EffectError(f"unknown effect {unknown[0]!r} in --effects; known: {', '.join(EFFECT_NAMES)}")
    return replace(settings, **dict.fromkeys(names, True))
