"""Batched quadrotor environment: Crazyflie hover with domain randomization and asymmetric observations."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from robot_ac.config import ConfigError
from robot_ac.paths import task_file
from robot_ac.sim.contract import ActionField, Contract, GroupSpec
from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.params import QuadrotorBatchParams, QuadrotorParams, load_quadrotor
from robot_ac.sim.task_config import TaskConfig, load_task
from robot_ac.sim.vec_env import StepResult, VecEnv

# Reward terms, in the order of ``info["reward_terms"]``: learners that keep a replay buffer store the raw terms
# and recompute the reward with the current curriculum weights (as Learning to Fly does).
INTEGRAL_LIMIT_M_S = 0.5  # anti-windup clamp of position_error_integral, per axis

REWARD_TERMS = ("position", "orientation", "velocity", "action", "action_rate", "action_magnitude")


class QuadrotorEnv(VecEnv):
    """``num_envs`` quadrotors stepped together; every tensor is ``[num_envs, ...]`` on ``device``.

    Actions are normalized motor commands in [-1, 1], mapped linearly to [rpm_min, rpm_max].
    """

    def __init__(self, task: TaskConfig | str | Path = "quadrotor-hover", num_envs: int = 1,
                 device: str | torch.device = "cpu", seed: int = 0,
                 robot: QuadrotorParams | str | Path | None = None,
                 domain_randomization: bool | None = None, observation_noise: bool | None = None,
                 curriculum: bool = True, curriculum_every_steps: int | None = None,
                 compile: bool = False) -> None:
        self.task = task if isinstance(task, TaskConfig) else load_task(task)
        self.robot = robot if isinstance(robot, QuadrotorParams) else load_quadrotor(robot or self.task.robot)
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.domain_randomization = (self.task.domain_randomization if domain_randomization is None
                                     else domain_randomization)
        if self.domain_randomization and self.robot.randomization is None:
            raise ConfigError(f"robot '{self.robot.name}'", "randomization",
                              "domain randomization is on but the robot file has no randomization section")
        self.observation_noise = self.task.observation_noise if observation_noise is None else observation_noise
        self.curriculum = curriculum
        self.curriculum_every_steps = curriculum_every_steps or self.task.reward.curriculum_every_steps
        self.dt = self.task.dt
        self.episode_steps = self.task.episode_steps
        self.history_length = self.task.action_history
        self.num_rotors = self.robot.num_rotors
        self.hover_action = self.robot.hover_action()
        max_delay = int(self.robot.randomization.actuation_delay_steps.high) if self.domain_randomization else 0
        self._buffer_length = max(self.history_length, max_delay + 1, 1)
        self._max_delay = max_delay

        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self.rotors = dynamics.RotorGeometry.from_lists(
            self.robot.rotor_positions, self.robot.rotor_yaw_directions, self.device)
        self._providers = self._field_providers()
        self.contract = self._build_contract()
        self._noise_columns = self._noise_layout("policy")
        self._arange = torch.arange(self.num_envs, device=self.device)

        start_w, self._target_w = self.task.reward.start_weights, self.task.reward.target_weights
        self.reward_weights = torch.tensor(start_w.as_list(), device=self.device)
        self._growth = torch.tensor(self.task.reward.growth.as_list(), device=self.device)
        self._target_weights = torch.tensor(self._target_w.as_list(), device=self.device)
        self.total_env_steps = 0
        self._curriculum_level = 0

        self.params = QuadrotorBatchParams.nominal(self.robot, self.num_envs, self.device)
        self.state = torch.zeros(self.num_envs, dynamics.STATE_SIZE, device=self.device)
        self.history = torch.zeros(self.num_envs, self._buffer_length, self.num_rotors, device=self.device)
        self.episode_step = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        # Integral of the position error (clamped): an optional policy field that gives a memoryless policy
        # integral action against constant disturbances. The runtime integrates it the same way.
        self.position_integral = torch.zeros(self.num_envs, 3, device=self.device)
        self._integrate = self._make_integrator()
        self._core = torch.compile(self._step_core, dynamic=False) if compile else self._step_core

    # ----------------------------------------------------------------------------------------- public API
    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        if seed is not None:
            self.generator.manual_seed(seed)
        self._reset_envs(self._arange)
        return self._observe()

    def step(self, actions: torch.Tensor) -> StepResult:
        actions = actions.to(device=self.device, dtype=torch.float32)
        if actions.shape != (self.num_envs, self.num_rotors):
            raise ValueError(f"actions must have shape {(self.num_envs, self.num_rotors)}, got {tuple(actions.shape)}")
        noise = self._draw_noise(self.num_envs)
        (self.state, self.history, self.episode_step, self.position_integral, observations, reward, terminated,
         truncated, info) = self._core(self.state, self.history, self.episode_step, self.position_integral, actions,
                                       noise, self.reward_weights)
        done = terminated | truncated
        if bool(done.any()):
            final = observations
            observations = {k: v.clone() for k, v in final.items()}
            ids = done.nonzero().squeeze(-1)
            self._reset_envs(ids)
            fresh = self._observe(ids)
            for key in observations:
                observations[key][ids] = fresh[key]
            info["final_observations"] = final
        else:
            info["final_observations"] = observations
        self._advance_curriculum()
        return StepResult(observations, reward, terminated, truncated, info)

    def _step_core(self, state: torch.Tensor, history: torch.Tensor, episode_step: torch.Tensor,
                   integral: torch.Tensor, actions: torch.Tensor, noise: torch.Tensor | None,
                   weights: torch.Tensor) -> tuple:
        """Everything in a step except resets: pure in its tensor arguments, so ``torch.compile`` fuses it."""
        nonfinite_action = ~torch.isfinite(actions).all(-1)
        # A non-finite action never reaches the dynamics: that environment gets motors-at-hover for this step
        # and terminates, so one bad policy output cannot poison the batch.
        action = torch.where(nonfinite_action[:, None], self.hover_action, actions).clamp(-1.0, 1.0)
        previous = history[:, 0]
        history = torch.cat([action[:, None], history[:, :-1]], dim=1)
        applied = action if self._max_delay == 0 else history[self._arange, self.params.delay_steps]
        rpm_cmd = self.robot.rpm_min + (applied + 1.0) * (0.5 * (self.robot.rpm_max - self.robot.rpm_min))
        state = self._integrate(state, rpm_cmd)
        episode_step = episode_step + 1

        nonfinite_state = ~torch.isfinite(state).all(-1)
        # Keep a diverged environment's numbers finite for the learners; it terminates and is reset.
        state = torch.where(nonfinite_state[:, None], 0.0, state)
        pos, quat, vel = state[:, dynamics.POS], state[:, dynamics.QUAT], state[:, dynamics.VEL]
        terms = torch.stack([
            (pos * pos).sum(-1),
            1.0 - quat[:, 0] * quat[:, 0],
            (vel * vel).sum(-1),
            ((action - self.hover_action) ** 2).sum(-1),
            ((action - previous) ** 2).sum(-1),
            (action * action).sum(-1),
        ], dim=-1)
        out_of_bounds = (pos.abs() > self.task.termination.position_limit).any(-1) | nonfinite_state
        terminated = out_of_bounds | nonfinite_action
        truncated = (episode_step >= self.episode_steps) & ~terminated
        reward = self.compute_reward(terms, terminated, weights)
        integral = (integral + pos * self.dt).clamp(-INTEGRAL_LIMIT_M_S, INTEGRAL_LIMIT_M_S)
        observations = self._observe_clean(state, history, integral, slice(None), self.num_envs)
        if noise is not None:
            observations["policy"] = self._add_noise(observations["policy"], noise)
        info = {
            "reward_terms": terms,
            "out_of_bounds": out_of_bounds & ~nonfinite_state,
            "nonfinite_state": nonfinite_state,
            "nonfinite_action": nonfinite_action,
            "position_error": torch.where(nonfinite_state, math.inf, pos.norm(dim=-1)),
            "episode_step": episode_step,
        }
        return state, history, episode_step, integral, observations, reward, terminated, truncated, info

    def compute_reward(self, terms: torch.Tensor, terminated: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Reward from raw terms ``[..., 6]`` with the given curriculum weights ``[4]``."""
        cfg = self.task.reward
        shaped = cfg.constant - cfg.scale * (terms[..., :4] * weights).sum(-1)
        return (shaped - cfg.action_rate * terms[..., 4] - cfg.action_magnitude * terms[..., 5]
                - cfg.termination_penalty * terminated.float())

    def set_total_env_steps(self, steps: int) -> None:
        """Move the reward curriculum to the level for ``steps`` (used when resuming training)."""
        self.total_env_steps = int(steps) - self.num_envs
        self._advance_curriculum()

    @property
    def position(self) -> torch.Tensor:
        return self.state[:, dynamics.POS]

    # ------------------------------------------------------------------------------------------ internals
    def _make_integrator(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        robot, dt, substeps, rotors = self.robot, self.dt, self.task.substeps, self.rotors

        def integrate(state: torch.Tensor, rpm_cmd: torch.Tensor) -> torch.Tensor:
            p = self.params
            return dynamics.rk4_step(state, rpm_cmd, dt, substeps, p.mass, p.inertia, p.thrust_coefficient,
                                     p.yaw_torque_coefficient, p.motor_time_constant, p.linear_drag,
                                     p.disturbance_force, p.disturbance_torque, rotors, robot.gravity)

        return integrate

    def _reset_envs(self, ids: torch.Tensor) -> None:
        n, g, dev, start = ids.numel(), self.generator, self.device, self.task.start
        if self.domain_randomization:
            self.params.resample(ids, self.robot.randomization, g)

        def uniform(scale: float, shape: tuple[int, ...]) -> torch.Tensor:
            return scale * (2.0 * torch.rand((n, *shape), generator=g, device=dev) - 1.0)

        axis = torch.randn((n, 3), generator=g, device=dev)
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        angle = math.radians(start.attitude_deg) * torch.rand((n, 1), generator=g, device=dev)
        quat = torch.cat([torch.cos(angle / 2), axis * torch.sin(angle / 2)], dim=-1)
        pos, vel, angvel = uniform(start.position, (3,)), uniform(start.velocity, (3,)), uniform(
            start.angular_velocity, (3,))
        at_rest = torch.rand((n, 1), generator=g, device=dev) < start.at_rest_fraction
        identity = torch.tensor([1.0, 0.0, 0.0, 0.0], device=dev)
        quat = torch.where(at_rest, identity, quat)
        pos, vel, angvel = (torch.where(at_rest, 0.0, x) for x in (pos, vel, angvel))
        mg = self.params.mass[ids] * self.robot.gravity
        hover_rpm = torch.sqrt(mg / (self.num_rotors * self.params.thrust_coefficient[ids]))
        rpm = hover_rpm[:, None].expand(n, self.num_rotors)
        self.state[ids] = torch.cat([pos, quat, vel, angvel, rpm], dim=-1)
        self.history[ids] = self.hover_action
        self.episode_step[ids] = 0
        self.position_integral[ids] = 0.0

    def _advance_curriculum(self) -> None:
        self.total_env_steps += self.num_envs
        if not self.curriculum:
            return
        level = self.total_env_steps // self.curriculum_every_steps
        while self._curriculum_level < level:
            self._curriculum_level += 1
            grown = self.reward_weights * self._growth
            capped = torch.where(self._growth >= 1.0, torch.minimum(grown, self._target_weights),
                                 torch.maximum(grown, self._target_weights))
            self.reward_weights = capped

    def _field_providers(self) -> dict[str, tuple[int, str, str, Callable[[dict], torch.Tensor]]]:
        """Every field this robot can provide: name -> (size, unit, frame, function of the selected state)."""
        r = self.num_rotors
        return {
            "position_error": (3, "m", "world", lambda s: s["state"][:, dynamics.POS]),
            "rotation_matrix": (9, "1", "body_to_world_row_major",
                                lambda s: dynamics.quat_to_rotmat(s["state"][:, dynamics.QUAT]).reshape(-1, 9)),
            "linear_velocity": (3, "m/s", "world", lambda s: s["state"][:, dynamics.VEL]),
            "angular_velocity": (3, "rad/s", "body", lambda s: s["state"][:, dynamics.ANGVEL]),
            "action_history": (self.history_length * r, "normalized", "motor",
                               lambda s: s["history"][:, : self.history_length].reshape(s["n"], -1)),
            "position_error_integral": (3, "m*s", "world", lambda s: s["integral"]),
            "previous_action": (r, "normalized", "motor", lambda s: s["history"][:, 0]),
            "rotor_speeds": (r, "fraction_of_rpm_max", "motor",
                             lambda s: s["state"][:, dynamics.RPM] / self.robot.rpm_max),
            "disturbance_force": (3, "N", "world", lambda s: s["params"].disturbance_force[s["ids"]]),
            "disturbance_torque": (3, "N*m", "body", lambda s: s["params"].disturbance_torque[s["ids"]]),
            "parameter_ratios": (7, "ratio_to_nominal", "none",
                                 lambda s: s["params"].as_ratio_to(self.robot)[s["ids"]]),
            "actuation_delay": (1, "control_steps", "none",
                                lambda s: s["params"].delay_steps[s["ids"]].float()[:, None]),
        }

    def _build_contract(self) -> Contract:
        source = str(task_file(self.task.task))
        groups = {}
        for group, fields in (self.task.observations or {}).items():
            checked = []
            for i, f in enumerate(fields):
                key = f"observations.{group}[{i}]"
                if f.name not in self._providers:
                    raise ConfigError(source, f"{key}.name",
                                      f"unknown field {f.name!r}; this robot provides {sorted(self._providers)}")
                size, unit, frame, _ = self._providers[f.name]
                for attr, expected in (("size", size), ("unit", unit), ("frame", frame)):
                    if getattr(f, attr) != expected:
                        declared = getattr(f, attr)
                        raise ConfigError(source, f"{key}.{attr}",
                                          f"field {f.name!r} has {attr} {expected!r} here, declared {declared!r}")
                if group != "policy" and f.noise_std > 0:
                    raise ConfigError(source, f"{key}.noise_std", "noise is only added to the policy group")
                checked.append(f)
            groups[group] = GroupSpec(group, tuple(checked))
        rpm_lo, rpm_hi = self.robot.rpm_min, self.robot.rpm_max
        actions = (ActionField("motor_command", self.num_rotors, "normalized", -1.0, 1.0, rpm_lo, rpm_hi,
                               "rotor speed command, linear map of [-1, 1] to [rpm_min, rpm_max] rpm"),)
        return Contract(
            robot=self.robot.name, task=self.task.task, control_rate_hz=self.task.control_rate_hz,
            groups=groups, actions=actions, action_history_length=self.history_length,
            extra={"initial_action": [self.hover_action] * self.num_rotors,
                   "position_error_integral_limit": INTEGRAL_LIMIT_M_S,
                   "position_target": [0.0, 0.0, 0.0],
                   "rotor_positions": [list(p) for p in self.robot.rotor_positions],
                   "rotor_yaw_directions": list(self.robot.rotor_yaw_directions)},
        )

    def _noise_layout(self, group: str) -> tuple[slice, torch.Tensor] | None:
        """Columns of ``group`` that get noise, as one contiguous slice plus per-column std (or None)."""
        spec = self.contract.groups[group]
        stds = torch.cat([torch.full((f.size,), f.noise_std) for f in spec.fields])
        noisy = (stds > 0).nonzero().squeeze(-1)
        if noisy.numel() == 0:
            return None
        lo, hi = int(noisy[0]), int(noisy[-1]) + 1
        return slice(lo, hi), stds[lo:hi].to(self.device)

    def _draw_noise(self, n: int) -> torch.Tensor | None:
        if not self.observation_noise or self._noise_columns is None:
            return None
        return torch.randn((n, self._noise_columns[1].numel()), generator=self.generator, device=self.device)

    def _add_noise(self, policy: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        cols, std = self._noise_columns
        return torch.cat([policy[:, : cols.start], policy[:, cols] + noise * std, policy[:, cols.stop:]], dim=-1)

    def _observe_clean(self, state: torch.Tensor, history: torch.Tensor, integral: torch.Tensor,
                       ids: torch.Tensor | slice, n: int) -> dict[str, torch.Tensor]:
        select = {"state": state, "history": history, "integral": integral, "params": self.params, "ids": ids,
                  "n": n}
        cache: dict[str, torch.Tensor] = {}
        out = {}
        for group, spec in self.contract.groups.items():
            parts = []
            for f in spec.fields:
                if f.name not in cache:
                    cache[f.name] = self._providers[f.name][3](select)
                parts.append(cache[f.name])
            out[group] = torch.cat(parts, dim=-1)
        return out

    def _observe(self, ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Observations of ``ids`` (all when None), with noise; the eager path used after resets."""
        if ids is None:
            out = self._observe_clean(self.state, self.history, self.position_integral, slice(None), self.num_envs)
        else:
            out = self._observe_clean(self.state[ids], self.history[ids], self.position_integral[ids], ids,
                                      ids.numel())
        noise = self._draw_noise(out["policy"].shape[0])
        if noise is not None:
            out["policy"] = self._add_noise(out["policy"], noise)
        return out
