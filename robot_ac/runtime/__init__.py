"""Real-time runtime: the policy controller shared by the ROS 2 node, the DDS process, HIL and the simulator.

``from robot_ac.runtime import PolicyController, QuadrotorState, FlightLog`` (imported lazily, so the flight
log can be used without loading onnxruntime).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "PolicyController": "controller", "ControllerConfig": "controller", "Command": "controller", "Mode": "controller",
    "QuadrotorState": "state", "JointState": "state", "StateError": "state",
    "FlightLog": "flight_log", "read_flight_log": "flight_log", "FlightLogError": "flight_log",
    "ObservationBuilder": "observation", "ContractError": "observation",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"robot_ac.runtime.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'robot_ac.runtime' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
