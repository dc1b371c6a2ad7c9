"""Batched quadrotor environment: Crazyflie hover with domain randomization and asymmetric observations."""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from robot_ac.compiler import __file__ as compiler_file
from robot_ac.compiler import precompile, tensor_and_key_guards
from robot_ac.config import ConfigError
from robot_ac.paths import task_file
from robot_ac.sim.contract import ActionField, Contract, GroupSpec
from robot_ac.sim.counter_rng import counter_normal, step_key
from robot_ac.sim.quadrotor import dynamics
from robot_ac.sim.quadrotor.native import NATIVE_ENV, NativeStepUnavailable, native_step
from robot_ac.sim.quadrotor.params import QuadrotorBatchParams, QuadrotorParams, load_quadrotor
from robot_ac.sim.quadrotor.start_replay import FailedStartReplay
from robot_ac.sim.task_config import TaskConfig, load_task
from robot_ac.sim.vec_env import StepResult, VecEnv

# Reward terms, in the order of ``info["reward_terms"]``: learners that keep a replay buffer store the raw terms
# and recompute the reward with the current curriculum weights (as Learning to Fly does).
INTEGRAL_LIMIT_M_S = 0.5  # anti-windup clamp of position_error_integral, per axis
ROW_FIELDS = frozenset({"action_history", "previous_action"})  # observation fields computed as [N, size]
START_POOL_FACTOR = 16  # pre-sampled episode starts per environment; the pool is topped up when it could run dry

REWARD_TERMS = ("position", "orientation", "velocity", "action", "action_rate", "action_magnitude", "position_distance")


@dataclass(frozen=True)
class ObservationSource:
    """What the observation fields are computed from: state columns ``[17, N]`` and the rest per environment."""

    state: torch.Tensor
    history: torch.Tensor
    integral: torch.Tensor
    params: QuadrotorBatchParams


class QuadrotorEnv(VecEnv):
    """``num_envs`` quadrotors stepped together; every tensor is ``[num_envs, ...]`` on ``device``.

    Actions are normalized motor commands in [-1, 1], mapped linearly to [rpm_min, rpm_max].
    ``history`` (the last actions ``[N, length, rotors]``, newest first): read it after each step, and clone it to
    keep a copy; the fused CPU step updates it in place, the torch step replaces it.
    """

    def __init__(self, task: TaskConfig | str | Path = "quadrotor-hover", num_envs: int = 1,
                 device: str | torch.device = "cpu", seed: int = 0,
                 robot: QuadrotorParams | str | Path | None = None,
                 domain_randomization: bool | None = None, observation_noise: bool | None = None,
                 curriculum: bool = True, curriculum_every_steps: int | None = None,
                 compile: bool = False, replay_failed_starts: float = 0.0, nominal_fraction: float = 0.0) -> None:
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
        self.nominal_fraction = float(nominal_fraction)  # training only: episodes on the nominal robot's parameters
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
        # State as structure of arrays [17, N]: each state variable is a contiguous column, which is what lets
        # torch.compile vectorize the dynamics across environments. ``state`` shows it as [N, 17].
        self._columns = torch.zeros(dynamics.STATE_SIZE, self.num_envs, device=self.device)
        self.history = torch.zeros(self.num_envs, self._buffer_length, self.num_rotors, device=self.device)
        self.episode_step = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        # Integral of the position error (clamped): an optional policy field that gives a memoryless policy
        # integral action against constant disturbances. The runtime integrates it the same way.
        self._integral = torch.zeros(3, self.num_envs, device=self.device)  # [3, N], like the state
        self._rotor_constants = self.rotors.constants()
        self._noise_seed = torch.tensor(seed, dtype=torch.int64, device=self.device)
        self._noise_counter = torch.zeros((), dtype=torch.int64, device=self.device)
        # Resets draw from a pool of pre-sampled start states and parameters, consumed in environment order, so
        # the step graph resets with masks (no data-dependent shapes, no sync) and stays deterministic.
        self._pool_size = max(START_POOL_FACTOR * self.num_envs, 64)
        # Training only: a fraction of new episodes restart from starts whose episodes terminated.
        self._replay = (FailedStartReplay(replay_failed_starts, self.num_envs, dynamics.STATE_SIZE,
                                          self.params.values.shape[0], self._pool_size, self.device)
                        if replay_failed_starts > 0 else None)
        self._pool_params, self._pool_state = self._sample_starts(self._pool_size)
        # The pool is a ring: the cursor counts the starts taken (entry ``cursor % pool size`` is next), and a refill
        # overwrites, in place, the entries taken since the last one (``_pool_refilled``).
        self._pool_cursor = torch.zeros((), dtype=torch.int64, device=self.device)
        self._pool_refilled = 0
        self._pool_reserved = 0
        # Guards only on tensors plus one key of the Python-side configuration (task, robot, flags), which is fixed
        # at construction: dynamo's default guards walk the whole config and contract on every call, ~0.2 ms per
        # step, as much as the dynamics at N = 4096. Environments with equal keys share a graph, which is correct.
        # The start distribution is left out: starts are drawn outside the graph (``_sample_starts``), so training
        # and its evaluations, which start differently, share one graph when they are as large.
        self._graph_key = hashlib.sha256(repr((replace(self.task, start=None), self.robot,
                                               self.domain_randomization,
                                               self.observation_noise, self.num_envs, str(self.device),
                                               self.hover_action)).encode()).hexdigest()
        if compile:
            # one cache entry per (configuration, batch size); the default limit of 8 would silently fall back
            # to eager in a process that builds more environments (benchmarks, tests)
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        self.uses_native_step = False  # whether steps run the fused C step (set by _compiled_core)
        self._core = self._compiled_core() if compile else self._step_core

    # ----------------------------------------------------------------------------------------- public API
    @property
    def state(self) -> torch.Tensor:
        """``[N, 17]`` view of the state (writable in place); layout in ``dynamics``."""
        return self._columns.T

    @property
    def position_integral(self) -> torch.Tensor:
        """``[N, 3]`` view of the clamped position-error integral (the ``position_error_integral`` field)."""
        return self._integral.T

    @state.setter
    def state(self, value: torch.Tensor) -> None:
        self._columns = value.T.contiguous().to(device=self.device, dtype=torch.float32)

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        if seed is not None:
            self.generator.manual_seed(seed)
            self._noise_seed = torch.tensor(seed, dtype=torch.int64, device=self.device)
            self._noise_counter.zero_()
        self._pool_params, self._pool_state = self._fresh_starts(self._pool_size)
        self._pool_cursor.zero_()
        ids = torch.arange(self.num_envs, device=self.device)
        self.params = self._pool_params.gather(ids)
        self._columns = self._pool_state[:, ids]
        self._pool_cursor += self.num_envs
        self._pool_refilled = 0
        self._pool_reserved = self.num_envs
        self.history[:] = self.hover_action
        self.episode_step.zero_()
        self._integral.zero_()
        if self._replay is not None:
            self._replay.begin(self._columns, self.params)
        return self._observe()

    def step(self, actions: torch.Tensor) -> StepResult:
        actions = actions.to(device=self.device, dtype=torch.float32)
        if actions.shape != (self.num_envs, self.num_rotors):
            raise ValueError(f"actions must have shape {(self.num_envs, self.num_rotors)}, got {tuple(actions.shape)}")
        self._ensure_pool()
        # The fused CPU step shifts the history in place and returns it; the torch step returns a new tensor (copying
        # that into the old buffer made the step compiled by inductor ~2x slower at 4096 environments here).
        (self._columns, self.history, self.episode_step, self._integral, self.params, self._pool_cursor,
         self._noise_counter, observations, reward, terminated, truncated, info) = self._core(
            self._columns, self.history, self.episode_step, self._integral, self.params, self._pool_cursor,
            self._noise_counter, actions, self.reward_weights)
        self._pool_reserved += self.num_envs
        self._advance_curriculum()
        if self._replay is not None:
            self._replay.record_failures(info["out_of_bounds"])
            self._replay.begin(self._columns, self.params, terminated | truncated)
        return StepResult(observations, reward, terminated, truncated, info)

    def _step_core(self, columns: torch.Tensor, history: torch.Tensor, episode_step: torch.Tensor,
                   integral: torch.Tensor, params: QuadrotorBatchParams, cursor: torch.Tensor,
                   counter: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> tuple:
        """The whole step, resets included: pure in its tensor arguments, so ``torch.compile`` fuses it."""
        if not self._graph_key:  # read so that the compiled graph is guarded on this environment's configuration
            raise RuntimeError("environment without a configuration key")
        nonfinite_action = ~torch.isfinite(actions).all(-1)
        # A non-finite action never reaches the dynamics: that environment gets motors-at-hover for this step
        # and terminates, so one bad policy output cannot poison the batch.
        action = torch.where(nonfinite_action[:, None], self.hover_action, actions).clamp(-1.0, 1.0)
        previous = history[:, 0]
        history = torch.cat([action[:, None], history[:, :-1]], dim=1)
        applied = action if self._max_delay == 0 else history[self._arange, params.delay_steps]
        rpm_cmd = self.robot.rpm_min + (applied + 1.0) * (0.5 * (self.robot.rpm_max - self.robot.rpm_min))
        state = dynamics.rk4_columns(list(columns.unbind(0)), list(rpm_cmd.unbind(-1)), self.dt,
                                     self.task.substeps, params.body_columns(), self._rotor_constants,
                                     self.robot.gravity)
        state = torch.stack(state, dim=0)
        episode_step = episode_step + 1

        nonfinite_state = ~torch.isfinite(state).all(0)
        # Keep a diverged environment's numbers finite for the learners; it terminates and is reset.
        state = torch.where(nonfinite_state[None], 0.0, state)
        pos, quat, vel = state[dynamics.POS].T, state[dynamics.QUAT].T, state[dynamics.VEL].T
        distance = pos.norm(dim=-1)
        terms = torch.stack([
            (pos * pos).sum(-1),
            1.0 - quat[:, 0] * quat[:, 0],
            (vel * vel).sum(-1),
            ((action - self.hover_action) ** 2).sum(-1),
            ((action - previous) ** 2).sum(-1),
            (action * action).sum(-1),
            distance,
        ], dim=-1)
        out_of_bounds = (pos.abs() > self.task.termination.position_limit).any(-1) | nonfinite_state
        terminated = out_of_bounds | nonfinite_action
        truncated = (episode_step >= self.episode_steps) & ~terminated
        reward = self.compute_reward(terms, terminated, weights)
        integral = (integral + state[dynamics.POS] * self.dt).clamp(-INTEGRAL_LIMIT_M_S, INTEGRAL_LIMIT_M_S)
        noise = self._noise(counter)
        final = self._observations(state, history, integral, params, noise)

        # Automatic resets: environments that ended take the next start states of the pool, in index order.
        done = terminated | truncated
        index = (cursor + torch.cumsum(done.long(), 0) - 1).remainder(self._pool_size)
        state = torch.where(done[None], self._pool_state[:, index], state)
        params = params.where(done, self._pool_params.gather(index))
        history = torch.where(done[:, None, None], self.hover_action, history)
        integral = torch.where(done[None], 0.0, integral)
        episode_step = torch.where(done, 0, episode_step)
        observations = self._observations(state, history, integral, params, noise)
        info = {
            "reward_terms": terms,
            "out_of_bounds": out_of_bounds & ~nonfinite_state,
            "nonfinite_state": nonfinite_state,
            "nonfinite_action": nonfinite_action,
            "position_error": torch.where(nonfinite_state, math.inf, distance),
            "episode_step": episode_step,
            "final_observations": final,
        }
        return (state, history, episode_step, integral, params, cursor + done.sum(), counter + 1, observations,
                reward, terminated, truncated, info)

    def compute_reward(self, terms: torch.Tensor, terminated: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Reward from raw terms ``[..., len(REWARD_TERMS)]`` with the given curriculum weights ``[4]``."""
        cfg = self.task.reward
        shaped = cfg.constant - cfg.scale * (terms[..., :4] * weights).sum(-1)
        shaped = (shaped - cfg.action_rate * terms[..., 4] - cfg.action_magnitude * terms[..., 5]
                  - cfg.position_linear * terms[..., 6]).clamp_min(cfg.floor)
        return shaped - cfg.termination_penalty * terminated.float()

    def set_total_env_steps(self, steps: int) -> None:
        """Move the reward curriculum to the level for ``steps`` (used when resuming training)."""
        self.total_env_steps = int(steps) - self.num_envs
        self._advance_curriculum()

    @property
    def position(self) -> torch.Tensor:
        return self.state[:, dynamics.POS]

    # ------------------------------------------------------------------------------------------ internals
    def _compiled_core(self) -> Callable[..., tuple]:
        """``_step_core`` compiled: on the CPU the fused C step (``native.py``), elsewhere, or without a working C
        compiler, ``torch.compile``."""
        if self.device.type == "cpu" and os.environ.get(NATIVE_ENV) != "0":  # "0": switched off, no warning
            try:
                step = native_step(self)
                self.uses_native_step = True
                return step
            except NativeStepUnavailable as err:
                warnings.warn(f"robot_ac: the native CPU step is not available ({err}); compiling the torch step",
                              stacklevel=3)
        # On CPU the graph's wrapper (allocations and kernel calls) in C++ rather than Python: at N = 4096,
        # 2.35-2.65M against 1.3-2.1M env-steps/s in paired fresh processes here (bench/sim_throughput.py).
        options = {"guard_filter_fn": tensor_and_key_guards, "cpp_wrapper": self.device.type == "cpu"}
        # Compiled once per machine and loaded by later runs: tracing the step took ~3 s of each run's start
        # (robot_ac.compiler.precompile). The graph key and this package's simulator code name the artifact.
        return precompile(self._step_core, self._graph_key, [Path(__file__).parents[1], Path(compiler_file)],
                          options, device=self.device)

    def _sample_starts(self, n: int) -> tuple[QuadrotorBatchParams, torch.Tensor]:
        """``n`` episode starts: parameters (randomized per the robot file) and start states ``[17, n]``."""
        g, dev, start = self.generator, self.device, self.task.start
        params = QuadrotorBatchParams.sample(self.robot, n, g, self.domain_randomization, self.nominal_fraction)

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
        hover_rpm = torch.sqrt(params.mass * self.robot.gravity / (self.num_rotors * params.thrust_coefficient))
        rpm = hover_rpm[:, None].expand(n, self.num_rotors)
        return params, torch.cat([pos, quat, vel, angvel, rpm], dim=-1).T.contiguous()

    def _fresh_starts(self, n: int) -> tuple[QuadrotorBatchParams, torch.Tensor]:
        """``n`` new pool entries: sampled starts, a fraction of them replayed failures when replay is on."""
        params, state = self._sample_starts(n)
        if self._replay is not None:
            self._replay.mix_into(state, params, self.generator)
        return params, state

    def _ensure_pool(self) -> None:
        """Top the start pool up before a step could run it dry.

        On a CPU, reading the cursor costs nothing, so the pool is refilled only when fewer unused starts remain than
        one step could take: with few resets, as in training, almost never. Elsewhere reading it would wait for the
        device, so the pool is refilled whenever a step could run it dry, every ~START_POOL_FACTOR steps: each
        refill is ~40 small ops, whatever their size, which at N = 4096 cost ~0.1 ms per step (~10% of the fused
        CPU step with random commands).
        Only the entries taken since the last refill are redrawn, in place: copying the rest of the pool to its front
        took 0.24 ms per step at N = 4096 with random actions (2.60 against 2.35 ms, runs/exp16/pool_ab.py). The
        order in which starts are taken is the same as with that copy.
        """
        if self.device.type == "cpu":
            if self._pool_size - (int(self._pool_cursor) - self._pool_refilled) >= self.num_envs:
                return
        elif self._pool_reserved + self.num_envs <= self._pool_size:
            return
        taken = int(self._pool_cursor)
        used = taken - self._pool_refilled
        if used:
            fresh_params, fresh_state = self._fresh_starts(used)
            slots = (self._pool_refilled + torch.arange(used, device=self.device)).remainder(self._pool_size)
            self._pool_params.put_(slots, fresh_params)
            self._pool_state[:, slots] = fresh_state
        self._pool_refilled = taken
        self._pool_reserved = 0

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

    def _field_providers(self) -> dict[str, tuple[int, str, str, Callable[[ObservationSource], torch.Tensor]]]:
        """Every field this robot can provide: name -> (size, unit, frame, function of the state).

        A function returns ``[size, N]`` (columns, like the state) or, for the action history, ``[N, size]``
        (rows): ``_observations`` transposes runs of columns at once, which keeps the writes contiguous.
        """
        r = self.num_rotors
        ratios = QuadrotorBatchParams.ratio_scale(self.robot).to(device=self.device, dtype=torch.float32)
        return {
            "position_error": (3, "m", "world", lambda s: s.state[dynamics.POS]),
            "rotation_matrix": (9, "1", "body_to_world_row_major",
                                lambda s: torch.stack(dynamics.quat_to_rotmat_columns(*s.state[dynamics.QUAT]))),
            "linear_velocity": (3, "m/s", "world", lambda s: s.state[dynamics.VEL]),
            "angular_velocity": (3, "rad/s", "body", lambda s: s.state[dynamics.ANGVEL]),
            "action_history": (self.history_length * r, "normalized", "motor",
                               lambda s: s.history[:, : self.history_length].flatten(1)),
            "position_error_integral": (3, "m*s", "world", lambda s: s.integral),
            "previous_action": (r, "normalized", "motor", lambda s: s.history[:, 0]),
            "rotor_speeds": (r, "fraction_of_rpm_max", "motor", lambda s: s.state[dynamics.RPM] / self.robot.rpm_max),
            "disturbance_force": (3, "N", "world", lambda s: s.params.disturbance_force.T),
            "disturbance_torque": (3, "N*m", "body", lambda s: s.params.disturbance_torque.T),
            "parameter_ratios": (7, "ratio_to_nominal", "none",
                                 lambda s: s.params.ratio_columns() * ratios[:, None]),
            "actuation_delay": (1, "control_steps", "none", lambda s: s.params.delay_steps.float()[None]),
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

    def _noise(self, counter: torch.Tensor) -> torch.Tensor | None:
        """This step's observation noise ``[noisy policy columns, N]`` (standard normal), or None."""
        if not self.observation_noise or self._noise_columns is None:
            return None
        key = step_key(self._noise_seed, counter)
        return counter_normal(key, (self._noise_columns[1].numel(), self.num_envs), self.device)

    def _observations(self, state: torch.Tensor, history: torch.Tensor, integral: torch.Tensor,
                      params: QuadrotorBatchParams, noise: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Every observation group ``[N, size]`` for state columns ``[17, N]``; noise on the policy group."""
        source = ObservationSource(state, history, integral, params)
        return {group: self._group_observation(spec, source, noise if group == "policy" else None)
                for group, spec in self.contract.groups.items()}

    def _group_observation(self, spec: GroupSpec, source: ObservationSource,
                           noise: torch.Tensor | None) -> torch.Tensor:
        """One group's vector. Runs of column fields are stacked ``[k, N]``, get their noise there and are
        transposed once, so each output row is written a single time."""
        runs: list[tuple[int, list[torch.Tensor]]] = []  # (first column, [k, N] blocks); a row field: (-1, [x])
        offset = 0
        for f in spec.fields:
            value = self._providers[f.name][3](source)
            if f.name in ROW_FIELDS:
                runs.append((-1, [value]))
            elif runs and runs[-1][0] >= 0:
                runs[-1][1].append(value)
            else:
                runs.append((offset, [value]))
            offset += f.size
        parts = []
        for start, blocks in runs:
            if start < 0:
                parts.append(blocks[0])
                continue
            block = torch.cat(blocks)
            if noise is not None:
                block = self._add_noise(block, noise, start)
            parts.append(block.T)
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0].contiguous()

    def _add_noise(self, block: torch.Tensor, noise: torch.Tensor, start: int) -> torch.Tensor:
        """Add the policy noise that falls on columns ``[start, start + len(block))`` of a ``[k, N]`` block."""
        cols, std = self._noise_columns
        lo, hi = max(cols.start, start), min(cols.stop, start + block.shape[0])
        if lo >= hi:
            return block
        noisy = block[lo - start: hi - start] + noise[lo - cols.start: hi - cols.start] * std[lo - cols.start:
                                                                                              hi - cols.start, None]
        return torch.cat([block[: lo - start], noisy, block[hi - start:]])

    def _observe(self) -> dict[str, torch.Tensor]:
        """Observations of the current state (after ``reset``), with this step's noise."""
        return self._observations(self._columns, self.history, self._integral, self.params,
                                  self._noise(self._noise_counter))
