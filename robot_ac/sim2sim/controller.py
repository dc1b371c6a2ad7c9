"""The controller the sim-to-sim runner flies: policy observation from typed state, onnxruntime, action guard.

The deployment controller (``robot_ac.runtime.controller.PolicyController``, runtime issue) is not committed yet;
``ContractController`` is the minimal stand-in with the same job, written against the bundle contract only, and
``make_controller`` is the one place to swap in the deployment class once it lands.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from robot_ac.policy.bundle import Bundle, BundleError
from robot_ac.sim2sim.state import QuadrotorState, quat_to_rotmat


class Controller(Protocol):
    def reset(self) -> None: ...

    def act(self, state: QuadrotorState) -> np.ndarray: ...


# Policy-observation fields this controller can build from a QuadrotorState (name -> size).
QUADROTOR_FIELDS = {"position_error": 3, "rotation_matrix": 9, "linear_velocity": 3, "angular_velocity": 3}


class ContractController:
    """Builds the ``policy`` observation exactly as the bundle's contract lists it and runs the network.

    A non-finite network output becomes motors-off (-1), the quadrotor safe command, and is counted in ``faults``;
    every command leaves clipped to the contract's action limits.
    """

    def __init__(self, bundle: Bundle, session=None) -> None:
        contract = bundle.contract
        self.contract = contract
        self.session = session if session is not None else bundle.session(threads=1)
        fields = contract["observation"]["fields"]
        history = contract.get("action_history", {})
        self.history_length = int(history.get("length", 0))
        self.action_size = int(contract["action"]["size"])
        for f in fields:
            name = f["name"]
            if name == history.get("field"):
                if int(f["size"]) != self.history_length * self.action_size:
                    raise BundleError(f"{bundle.path}: action_history field size {f['size']} is not "
                                      f"{self.history_length} x {self.action_size}")
            elif QUADROTOR_FIELDS.get(name) != int(f["size"]):
                raise BundleError(f"{bundle.path}: observation field {name!r} (size {f['size']}) cannot be built "
                                  f"from a quadrotor state; known: {', '.join(QUADROTOR_FIELDS)}")
        self.fields = [(f["name"], int(f["offset"]), int(f["size"])) for f in fields]
        self.history_field = history.get("field")
        action_fields = contract["action"]["fields"]
        self.low = np.concatenate([np.full(int(a["size"]), float(a["low"])) for a in action_fields])
        self.high = np.concatenate([np.full(int(a["size"]), float(a["high"])) for a in action_fields])
        initial = contract.get("initial_action")
        self.initial_action = (np.asarray(initial, dtype=np.float32) if initial is not None
                               else np.zeros(self.action_size, dtype=np.float32))
        self.safe_action = self.low.astype(np.float32)  # quadrotor: motors off
        self.target = np.asarray(contract.get("position_target", [0.0, 0.0, 0.0]), dtype=np.float64)
        self.obs = np.zeros((1, int(contract["observation"]["size"])), dtype=np.float32)
        self.history = np.zeros((self.history_length, self.action_size), dtype=np.float32)
        self.faults = 0
        self.reset()

    def reset(self) -> None:
        self.history[:] = self.initial_action
        self.faults = 0

    def observation(self, state: QuadrotorState) -> np.ndarray:
        """The policy vector for ``state`` (shape ``[1, n_obs]``; the buffer is reused)."""
        values = {
            "position_error": lambda: state.position - self.target,
            "rotation_matrix": lambda: quat_to_rotmat(state.quaternion).reshape(-1),
            "linear_velocity": lambda: state.linear_velocity,
            "angular_velocity": lambda: state.angular_velocity,
        }
        for name, offset, size in self.fields:
            if name == self.history_field:
                self.obs[0, offset:offset + size] = self.history.reshape(-1)
            else:
                self.obs[0, offset:offset + size] = values[name]()
        return self.obs

    def act(self, state: QuadrotorState) -> np.ndarray:
        obs = self.observation(state)
        if not np.isfinite(obs).all():
            action = self.safe_action.copy()
            self.faults += 1
        else:
            action = self.session.run(["action"], {"obs": obs})[0][0].astype(np.float32)
            if not np.isfinite(action).all():
                action = self.safe_action.copy()
                self.faults += 1
        action = np.clip(action, self.low, self.high).astype(np.float32)
        if self.history_length:
            self.history[1:] = self.history[:-1]
            self.history[0] = action
        return action


def make_controller(bundle: Bundle, session=None) -> Controller:
    """The controller for ``bundle`` (``session``: an onnxruntime session to share between robots of one batch).

    The deployment ``PolicyController`` replaces the stand-in here once it lands.
    """
    return ContractController(bundle, session)
