"""Sim-to-sim validation: fly a policy bundle in an independent physics engine beside the training simulator.

``run_sim2sim`` flies the same start states in both through the same controller; ``write_report`` turns the
result into a folder a person reads. Engine backends are registered per robot kind in ``backend``.

The names below load on first use (PEP 562), so that the command line can read ``effects`` for its help without
importing torch: ``robot-ac train`` starts its learner host before this process imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    "Backend": "backend", "BackendOptions": "backend", "Sim2SimError": "backend", "create_backend": "backend",
    "engines": "backend", "register_backend": "backend",
    "EFFECT_NAMES": "effects", "EffectError": "effects", "EffectSettings": "effects", "parse_effects": "effects",
    "write_report": "report",
    "Sim2SimResult": "runner", "run_sim2sim": "runner",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
