"""Sim-to-sim validation: fly a policy bundle in an independent physics engine beside the training simulator.

``run_sim2sim`` flies the same start states in both through the same controller; ``write_report`` turns the
result into a folder a person reads. Engine backends are registered per robot kind in ``backend``.
"""

from robot_ac.sim2sim.backend import Backend, BackendOptions, Sim2SimError, create_backend, engines, register_backend
from robot_ac.sim2sim.effects import EFFECT_NAMES, EffectError, EffectSettings, parse_effects
from robot_ac.sim2sim.report import write_report
from robot_ac.sim2sim.runner import Sim2SimResult, run_sim2sim

__all__ = [
    "EFFECT_NAMES", "Backend", "BackendOptions", "EffectError", "EffectSettings", "Sim2SimError", "Sim2SimResult",
    "create_backend", "engines", "parse_effects", "register_backend", "run_sim2sim", "write_report",
]
