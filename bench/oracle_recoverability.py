"""How many of the evaluation episodes the shipped hover policy loses could any controller have saved?

The shipped Crazyflie hover policy survives ~90.7% of the 1000 evaluation episodes (seed 12345) and the success
criterion needs 95%. Its losses concentrate in starts tilted beyond ~60 degrees with slow motors. Before spending
more training on it we need to know whether those episodes are recoverable at all, or whether the 95% target is
out of reach for physics reasons. This benchmark answers that with an oracle that knows everything:

1. Rebuild the evaluation environment exactly as ``evaluate_policy`` does and record every episode's start state
   and randomized parameters (mass, inertia, thrust and yaw coefficients, motor time constant, delay, disturbance).
2. Run the shipped bundle through ``evaluate_policy(..., record=True)`` to find the episodes it loses.
3. Fly each lost episode with the oracle: sampling-based model-predictive control (MPPI, Williams et al. 2017, with
   CEM-style elites and a kept incumbent plan) over motor commands, planning on the true model -- the simulator's
   own RK4 dynamics with that episode's true parameters, actuation delay and constant disturbance, from the true
   state, with no observation noise -- in a ``QuadrotorEnv`` whose per-environment parameters are overwritten
   with copies of the episode's. Every few steps the oracle also tries handing the episode to a full-knowledge
   cascaded hold controller (after j steps of its plan); a hand-over is committed only when a rollout on the true
   model to the end of the episode proves it stays in the box. The flight itself runs in a separate
   ``QuadrotorEnv`` (one environment per episode) through the public ``env.step``; an episode is kept when it
   never leaves the +-0.6 m box in 500 steps (5 s), as in the evaluation. Episodes still lost go to a stronger
   pass (more samples, longer horizon). ``--handover-every 0`` flies MPPI alone.
4. Checks: every flown command sequence is replayed in a fresh, untouched evaluation environment (built and reset
   exactly as ``evaluate_policy`` does), which must reproduce the counted survival; a random sample of episodes
   the policy survives is flown by the oracle (and by MPPI alone), which must keep them all.
5. Room to spare: the same oracle asked to stay ``--margins`` inside the box.
6. An analytic bound: with first-order motors starting at hover speed, the fastest the tilt can shrink and the
   most vertical thrust that can exist by time t give an upper bound on height z(t); if that bound leaves the box,
   no controller can save the episode.

An oracle failure is evidence, not proof, of infeasibility (the search can miss a solution); an oracle success
is proof of feasibility (the replay flies it); the analytic bound is proof of infeasibility, but loose. Prints a
table and writes ``bench/results/oracle_recoverability.json``.

    python bench/oracle_recoverability.py [--samples 512] [--horizon 60] [--check-survivors 50] [--margins 0.02]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from robot_ac.compiler import compile_function  # noqa: E402
from robot_ac.sim.quadrotor import dynamics  # noqa: E402
from robot_ac.sim.quadrotor.env import QuadrotorEnv  # noqa: E402
from robot_ac.sim.quadrotor.params import QuadrotorBatchParams, QuadrotorParams  # noqa: E402
from robot_ac.training.evaluate import SETTLE_THRESHOLD_M, evaluate_policy  # noqa: E402
from robot_ac.training.policy_source import load_policy  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------ episodes
@dataclass
class Episodes:
    """Start states ``[N, 17]``, parameters and initial action buffers of the evaluation episodes."""

    state: torch.Tensor
    params: QuadrotorBatchParams
    history: torch.Tensor  # [N, L, 4], the delayed-command buffer at the start (all nominal hover)

    def select(self, ids: torch.Tensor) -> Episodes:
        params = self.params.gather(ids)
        return Episodes(self.state[ids].clone(), params, self.history[ids].clone())

    def repeat(self, k: int) -> Episodes:
        """Each episode ``k`` times in a row (``repeat_interleave``): the sample batch of a planner."""
        params = self.params.gather(torch.arange(len(self)).repeat_interleave(k))
        return Episodes(self.state.repeat_interleave(k, 0), params, self.history.repeat_interleave(k, 0))

    def __len__(self) -> int:
        return self.state.shape[0]


def evaluation_episodes(task: str, episodes: int, seed: int) -> tuple[QuadrotorEnv, Episodes]:
    """The environment ``evaluate_policy`` builds, reset as it resets it, and a copy of what the reset drew."""
    env = QuadrotorEnv(task, num_envs=episodes, seed=seed, curriculum=False)
    env.reset(seed=seed)
    params = QuadrotorBatchParams(env.params.values.clone(), env.params.delay_steps.clone())
    return env, Episodes(env.state.clone(), params, env.history.clone())


def load_into(env: QuadrotorEnv, episodes: Episodes) -> None:
    """Overwrite every per-environment quantity of ``env`` in place with ``episodes`` (sizes must match)."""
    env.params.values.copy_(episodes.params.values)
    env.params.delay_steps.copy_(episodes.params.delay_steps)
    env.state.copy_(episodes.state)
    env.history.copy_(episodes.history[:, : env.history.shape[1]])
    env.episode_step.zero_()
    env.position_integral.zero_()


def tilt_deg(state: torch.Tensor) -> torch.Tensor:
    """Angle between body z and world z, degrees."""
    q = state[:, dynamics.QUAT]
    cos = 1.0 - 2.0 * (q[:, 1] ** 2 + q[:, 2] ** 2)
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


# ------------------------------------------------------------------------------------------------- oracle
@dataclass(frozen=True)
class OracleSettings:
    """One pass of the sampling-based MPC oracle."""

    samples: int = 512             # rollouts per episode and optimisation iteration
    horizon: int = 60              # control steps (0.6 s at 100 Hz)
    knot_every: int = 4            # noise is drawn every this many steps and linearly interpolated
    sigmas: tuple[float, ...] = (0.05, 0.15, 0.35, 0.7)  # per-sample-group noise std, normalized action units
    uniform_fraction: float = 0.0625  # samples drawn uniformly in [-1, 1] at the knots, ignoring the mean
    elite_fraction: float = 1 / 32
    iterations_first: int = 12     # optimisation iterations before the first action
    iterations_early: int = 3      # per control step during the first `early_steps`
    early_steps: int = 60
    plan_steps: int = 200          # re-plan every step up to here (2 s) ...
    replan_every: int = 5          # ... then every this many steps, executing the best plan open loop between
    handover_every: int = 5        # try handing the episode to the hold controller this often (0: never)
    margin: float = 0.0            # keep this far inside the box (m): plan, verify and count against limit - margin
    seed: int = 0


@dataclass
class OracleOutcome:
    """What the oracle's flown trajectories did, per episode ``[N]``."""

    survived: torch.Tensor         # bool: never left the box in the whole episode
    death_step: torch.Tensor       # long: step at which it left the box (episode_steps when survived)
    min_z: torch.Tensor            # lowest z reached while alive
    max_abs_pos: torch.Tensor      # largest |position| on any axis while alive: the margin is limit - this
    upright_step: torch.Tensor     # long: first step with tilt below UPRIGHT_DEG (-1: never)
    z_at_upright: torch.Tensor     # z at that step
    settle_error: torch.Tensor     # mean position error over the last second (inf when lost)
    handed_over_at: torch.Tensor   # long: step from which the hold controller flies it (-1: never)
    actions: torch.Tensor          # [T, N, 4] the commands flown
    model_error: float             # largest |predicted - flown| state difference one step after a plan
    env_steps: int                 # simulated planning steps (rollouts x steps)
    seconds: float


UPRIGHT_DEG = 15.0


class Costs:
    """Stage and terminal costs of a rollout; a rollout that leaves the box pays ``dead`` every later step."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.soft = limit - 0.12      # quadratic barrier from here to the limit
        self.dead = 1000.0

    def stage(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos, quat, vel, w = (state[:, dynamics.POS], state[:, dynamics.QUAT], state[:, dynamics.VEL],
                             state[:, dynamics.ANGVEL])
        up = 1.0 - 2.0 * (quat[:, 1] ** 2 + quat[:, 2] ** 2)
        finite = torch.isfinite(state).all(-1)
        out = (pos.abs() > self.limit).any(-1) | ~finite
        barrier = torch.relu(pos.abs() - self.soft).pow(2).sum(-1)
        cost = ((pos * pos).sum(-1) + 0.1 * (vel * vel).sum(-1) + 0.5 * (1.0 - up) + 0.001 * (w * w).sum(-1)
                + 200.0 * barrier)
        return torch.nan_to_num(cost, nan=0.0, posinf=0.0), out

    def terminal(self, state: torch.Tensor) -> torch.Tensor:
        pos, quat, vel, w = (state[:, dynamics.POS], state[:, dynamics.QUAT], state[:, dynamics.VEL],
                             state[:, dynamics.ANGVEL])
        up = 1.0 - 2.0 * (quat[:, 1] ** 2 + quat[:, 2] ** 2)
        ahead = pos + 0.25 * vel      # where the drone heads: it cannot stop instantly
        cost = 10.0 * ((pos * pos).sum(-1) + 0.5 * (vel * vel).sum(-1) + (1.0 - up) + 0.01 * (w * w).sum(-1))
        cost = cost + 2000.0 * torch.relu(ahead.abs() - self.soft).pow(2).sum(-1)
        return torch.nan_to_num(cost, nan=1e6, posinf=1e6)


class Planner:
    """MPPI/CEM over motor-command sequences for ``E`` episodes at once, ``K`` rollouts each (batch ``E*K``).

    The rollouts run in a ``QuadrotorEnv`` whose per-environment parameters are overwritten with copies of each
    episode's true parameters; a rollout step is exactly the environment's step without observations:
    clamp, delay through the command buffer, rpm map, ``dynamics.rk4_step`` with ``env.params``.
    """

    def __init__(self, episodes: Episodes, settings: OracleSettings, task: str, compile: bool) -> None:
        self.E, self.K, self.H = len(episodes), settings.samples, settings.horizon
        self.env = QuadrotorEnv(task, num_envs=self.E * self.K, seed=settings.seed, curriculum=False,
                                domain_randomization=True, observation_noise=False)
        load_into(self.env, episodes.repeat(self.K))
        self.robot = self.env.robot
        self.costs = Costs(self.env.task.termination.position_limit - settings.margin)
        self.delayed = (self.env.params.delay_steps > 0)[None, :, None]  # [1, EK, 1]
        if int(self.env.params.delay_steps.max()) > 1:
            raise NotImplementedError("the oracle models a delay of 0 or 1 control steps")
        self.gen = torch.Generator().manual_seed(settings.seed)
        n_knots = math.ceil((self.H - 1) / settings.knot_every) + 1
        t = torch.arange(self.H, dtype=torch.float32) / settings.knot_every
        self.interp = torch.relu(1.0 - (t[:, None] - torch.arange(n_knots)[None, :]).abs())  # [H, n_knots]
        groups = torch.arange(self.K) * len(settings.sigmas) // self.K
        self.sigma = torch.tensor(settings.sigmas)[groups][None, :, None, None]  # [1, K, 1, 1]
        self.uniform = torch.arange(self.K) >= self.K - max(1, int(round(settings.uniform_fraction * self.K)))
        self.n_elite = max(4, int(round(settings.elite_fraction * self.K)))
        self.n_knots = n_knots
        step = self._rollout_step
        self._step = compile_function(step, dynamic=False) if compile else step
        self.env_steps = 0

    def _rollout_step(self, state: torch.Tensor, applied: torch.Tensor, dead: torch.Tensor,
                      cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p, r = self.env.params, self.robot
        rpm_cmd = r.rpm_min + (applied + 1.0) * (0.5 * (r.rpm_max - r.rpm_min))
        state = dynamics.rk4_step(state, rpm_cmd, self.env.dt, self.env.task.substeps, p.mass, p.inertia,
                                  p.thrust_coefficient, p.yaw_torque_coefficient, p.motor_time_constant,
                                  p.linear_drag, p.disturbance_force, p.disturbance_torque, self.env.rotors,
                                  r.gravity)
        stage, out = self.costs.stage(state)
        dead = dead | out
        cost = cost + torch.where(dead, self.costs.dead, stage)
        state = torch.where(torch.isfinite(state), state, 0.0)
        return state, dead, cost

    def evaluate(self, start: torch.Tensor, previous: torch.Tensor, plans: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Costs ``[E, K]`` of command sequences ``plans [E, K, H, 4]`` from states ``[E, 17]``.

        ``previous [E, 4]`` is the command in the buffer's first slot (applied now when the delay is 1 step).
        Also returns the state one step ahead of every rollout (``[E, K, 17]``) for the model check.
        """
        E, K, H = self.E, self.K, self.H
        cmds = plans.permute(2, 0, 1, 3).reshape(H, E * K, 4)
        prev = previous.repeat_interleave(K, 0)[None]
        applied = torch.where(self.delayed, torch.cat([prev, cmds[:-1]], 0), cmds)
        state = start.repeat_interleave(K, 0)
        dead = torch.zeros(E * K, dtype=torch.bool)
        cost = torch.zeros(E * K)
        first = state
        for t in range(H):
            state, dead, cost = self._step(state, applied[t], dead, cost)
            if t == 0:
                first = state
        cost = cost + torch.where(dead, self.costs.dead, self.costs.terminal(state))
        self.env_steps += E * K * H
        return cost.reshape(E, K), first.reshape(E, K, -1)

    def sample(self, mean: torch.Tensor, incumbent: torch.Tensor) -> torch.Tensor:
        """``[E, K, H, 4]``: the mean, the incumbent, Gaussian perturbations of the mean, a few uniform draws."""
        E, K = self.E, self.K
        knots = torch.randn((E, K, self.n_knots, 4), generator=self.gen) * self.sigma
        noise = torch.einsum("hn,eknc->ekhc", self.interp, knots)
        plans = mean[:, None] + noise
        uniform = torch.rand((E, int(self.uniform.sum()), self.n_knots, 4), generator=self.gen) * 2.0 - 1.0
        plans[:, self.uniform] = torch.einsum("hn,eknc->ekhc", self.interp, uniform)
        plans[:, 0] = mean
        plans[:, 1] = incumbent
        return plans.clamp(-1.0, 1.0)

    def optimise(self, start: torch.Tensor, previous: torch.Tensor, mean: torch.Tensor, incumbent: torch.Tensor,
                 iterations: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Improve ``mean`` and ``incumbent`` ``[E, H, 4]``; returns them, the incumbent's cost and its next state."""
        best_cost = torch.full((self.E,), math.inf)
        best_next = start.clone()
        idx = torch.arange(self.E)
        for _ in range(iterations):
            plans = self.sample(mean, incumbent)
            cost, nxt = self.evaluate(start, previous, plans)
            c_min, k_min = cost.min(1)
            better = c_min <= best_cost
            incumbent = torch.where(better[:, None, None], plans[idx, k_min], incumbent)
            best_next = torch.where(better[:, None], nxt[idx, k_min], best_next)
            best_cost = torch.minimum(best_cost, c_min)
            elite_cost, elite = cost.topk(self.n_elite, dim=1, largest=False)
            spread = (elite_cost - elite_cost[:, :1]).mean(1, keepdim=True).clamp_min(1e-6)
            w = torch.softmax(-(elite_cost - elite_cost[:, :1]) / (0.5 * spread), dim=1)
            mean = (w[:, :, None, None] * plans[idx[:, None], elite]).sum(1)
        return mean, incumbent, best_cost, best_next


@dataclass(frozen=True)
class HoldGains:
    """Gains of the full-knowledge cascaded hold controller (position PD -> tilt -> rates -> rotor speeds)."""

    kp: float = 4.0                # 1/s^2, position
    kd: float = 3.5                # 1/s, velocity
    max_tilt_deg: float = 45.0     # horizontal acceleration demand capped at g tan(this)
    attitude_rad_s: float = 14.0   # natural frequency of the attitude loop
    attitude_damping: float = 0.8
    yaw_rate_gain: float = 2.0     # 1/s, yaw is only damped
    motor_time: float = 0.02       # s, motors driven as if their time constant were this (lead on the lag)


def hold_controller(state: torch.Tensor, p: QuadrotorBatchParams, robot: QuadrotorParams,
                    gains: HoldGains | None = None) -> torch.Tensor:
    """Normalized motor commands ``[N, 4]`` that bring a quadrotor to hover at the origin, knowing everything.

    Uses the true mass, inertia, thrust and yaw coefficients, motor time constant and the constant disturbance
    (cancelled as feed-forward). It settles what it can recover, but alone it recovers only part of the hard
    starts: the oracle uses it to hold hover once MPPI has done the recovery, and only after a rollout on the
    true model proves that handing over survives the rest of the episode.
    """
    gains = gains or HoldGains()
    pos, vel, w, rpm = (state[:, dynamics.POS], state[:, dynamics.VEL], state[:, dynamics.ANGVEL],
                        state[:, dynamics.RPM])
    rot = dynamics.quat_to_rotmat(state[:, dynamics.QUAT])
    acc = -gains.kp * pos - gains.kd * vel
    horizontal = acc[:, :2]
    cap = robot.gravity * math.tan(math.radians(gains.max_tilt_deg))
    scale = (cap / horizontal.norm(dim=-1, keepdim=True).clamp_min(1e-9)).clamp(max=1.0)
    acc = torch.cat([horizontal * scale, acc[:, 2:] + robot.gravity], dim=-1)
    force = p.mass[:, None] * acc - p.disturbance_force
    body_z = rot[:, :, 2]
    thrust = (force * body_z).sum(-1).clamp_min(0.0)
    target_z = force / force.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    cross = torch.linalg.cross(body_z, target_z)
    sin, cos = cross.norm(dim=-1, keepdim=True), (body_z * target_z).sum(-1, keepdim=True)
    error = torch.einsum("nji,nj->ni", rot, cross / sin.clamp_min(1e-9) * torch.atan2(sin, cos))  # body frame
    wn, zeta = gains.attitude_rad_s, gains.attitude_damping
    alpha = wn * wn * error - 2.0 * zeta * wn * w
    alpha = torch.cat([alpha[:, :2], -gains.yaw_rate_gain * w[:, 2:]], dim=-1)
    inertia = p.inertia
    torque = inertia * alpha + torch.linalg.cross(w, inertia * w) - p.disturbance_torque
    x = torch.tensor([r[0] for r in robot.rotor_positions])
    y = torch.tensor([r[1] for r in robot.rotor_positions])
    d = torch.tensor(robot.rotor_yaw_directions)
    # The X layout's mixer columns (1, y, -x, d) are orthogonal, so its inverse is a sum of projections.
    rotor = (thrust[:, None] / 4.0 + torque[:, :1] * y / (y * y).sum() - torque[:, 1:2] * x / (x * x).sum()
             + torque[:, 2:] * d / (p.yaw_torque_coefficient[:, None] * (d * d).sum()))
    rpm_target = torch.sqrt(rotor.clamp_min(0.0) / p.thrust_coefficient[:, None])
    rpm_cmd = rpm + (p.motor_time_constant[:, None] / gains.motor_time) * (rpm_target - rpm)
    return (2.0 * (rpm_cmd - robot.rpm_min) / (robot.rpm_max - robot.rpm_min) - 1.0).clamp(-1.0, 1.0)


def fly_with_handover(task: str, episodes: Episodes, plans: torch.Tensor, handover: list[int], steps: int,
                      box: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Fly each episode's ``plans [E, H, 4]`` for ``handover[c]`` steps, then the hold controller, for ``steps``.

    Every candidate c runs in its own copy of the episode, stepped through ``QuadrotorEnv.step`` (the true model:
    the copy carries the episode's current state, command buffer and parameters). Returns which candidates
    survive ``[E, C]`` (never beyond ``box`` on any axis) and their commands ``[steps, E, C, 4]``.
    """
    e, c = len(episodes), len(handover)
    env = QuadrotorEnv(task, num_envs=e * c, curriculum=False, domain_randomization=True, observation_noise=False)
    load_into(env, episodes.repeat(c))
    switch = torch.tensor(handover).repeat(e)
    plans = plans.repeat_interleave(c, 0)
    alive = torch.ones(e * c, dtype=torch.bool)
    actions = torch.zeros(steps, e * c, 4)
    for t in range(steps):
        action = hold_controller(env.state, env.params, env.robot)
        if t < plans.shape[1]:
            action = torch.where((t < switch)[:, None], plans[:, t], action)
        actions[t] = action
        terminated = env.step(action).terminated  # (a terminated copy is reset: its state no longer counts)
        alive &= ~terminated & (env.state[:, dynamics.POS].abs() <= box).all(-1)
    return alive.reshape(e, c), actions.reshape(steps, e, c, 4)


def shift(plan: torch.Tensor, steps: int) -> torch.Tensor:
    """Drop the first ``steps`` commands of ``[E, H, 4]`` plans and repeat the last one at the end."""
    return torch.cat([plan[:, steps:], plan[:, -1:].expand(-1, steps, -1)], dim=1)


def run_oracle(episodes: Episodes, settings: OracleSettings, task: str, compile: bool = True,
               log_every: int = 50, label: str = "") -> OracleOutcome:
    """Fly ``episodes`` with the oracle for a whole evaluation episode; one flown environment per episode.

    Until an episode is handed over, MPPI re-plans it (every step for ``plan_steps``, then every
    ``replan_every``) and the flown environment executes the incumbent plan. Every ``handover_every`` steps each
    episode still planned gets candidates "incumbent plan for j steps, then the hold controller until the end"
    (j = 0, H/4, H/2, H), rolled out on the true model for the rest of the episode; the first candidate that
    survives is committed and flown open loop (the model is exact, so the flight repeats the rollout).
    """
    t0 = time.perf_counter()
    n = len(episodes)
    flown = QuadrotorEnv(task, num_envs=n, seed=settings.seed + 1, curriculum=False, domain_randomization=True,
                         observation_noise=False)
    load_into(flown, episodes)
    steps = flown.episode_steps
    last_second = round(flown.task.control_rate_hz)
    hover = torch.full((n, settings.horizon, 4), flown.hover_action)
    alive = torch.ones(n, dtype=torch.bool)
    death = torch.full((n,), steps, dtype=torch.long)
    min_z = flown.state[:, 2].clone()
    max_pos = flown.state[:, :3].abs().amax(1)
    upright_step = torch.where(tilt_deg(flown.state) < UPRIGHT_DEG, 0, -1)
    z_upright = torch.where(upright_step == 0, flown.state[:, 2], math.nan)
    error_sum = torch.zeros(n)
    model_error = 0.0
    env_steps = 0
    executed = torch.zeros(steps, n, 4)
    committed = torch.zeros(n, dtype=torch.bool)
    handed_over_at = torch.full((n,), -1, dtype=torch.long)
    commands = torch.zeros(steps, n, 4)   # committed open-loop commands
    h = settings.horizon
    switches = sorted({0, h // 4, h // 2, h})
    box = flown.task.termination.position_limit - settings.margin

    active = torch.arange(n)          # episodes the current planner serves
    planner = Planner(episodes.select(active), settings, task, compile)
    mean, incumbent = hover[active].clone(), hover[active].clone()
    since_plan = settings.replan_every
    for t in range(steps):
        # Hand over to the hold controller where a rollout on the true model proves it survives the rest.
        planning = alive & ~committed
        if settings.handover_every and t % settings.handover_every == 0 and bool(planning[active].any()):
            ids = active[planning[active]]
            now = Episodes(flown.state[ids].clone(), episodes.select(ids).params, flown.history[ids].clone())
            ok, acts = fly_with_handover(task, now, incumbent[planning[active]], switches, steps - t, box)
            has = ok.any(1)
            first = ok.float().argmax(1)
            for j in has.nonzero().squeeze(-1).tolist():
                e = int(ids[j])
                commands[t:, e] = acts[:, j, int(first[j])]
                committed[e] = True
                handed_over_at[e] = t + switches[int(first[j])]
        # Re-plan for the episodes still planned; rebuild a smaller planner once half the batch is done.
        live = (alive & ~committed)[active]
        if not bool(live.all()) and int(live.sum()) <= len(active) // 2:
            env_steps += planner.env_steps
            active, mean, incumbent = active[live], mean[live], incumbent[live]
            planner = Planner(episodes.select(active), settings, task, compile) if active.numel() else None
        if not bool(alive.any()):
            break
        replan = planner is not None and (t < settings.plan_steps or since_plan >= settings.replan_every)
        if replan:
            iters = (settings.iterations_first if t == 0 else
                     settings.iterations_early if t < settings.early_steps else 1)
            start, previous = flown.state[active], flown.history[active, 0]
            mean, incumbent, _, predicted = planner.optimise(start, previous, mean, incumbent, iters)
            since_plan = 0
        action = torch.full((n, 4), flown.hover_action)
        if active.numel():
            action[active] = incumbent[:, 0]
        action[committed] = commands[t, committed]
        executed[t] = action
        result = flown.step(action)
        if replan:
            ok = (alive & ~committed & ~(result.terminated | result.truncated))[active]  # a reset replaces it
            if bool(ok.any()):
                err = (flown.state[active][ok] - predicted[ok]).abs()
                scale = torch.ones(17)
                scale[dynamics.RPM] = flown.robot.rpm_max  # rpm compared as a fraction of rpm_max
                model_error = max(model_error, float((err / scale).max()))
        if active.numel():
            mean, incumbent = shift(mean, 1), shift(incumbent, 1)
        since_plan += 1
        # The critic observation of the step, taken before any automatic reset: position and rotation matrix.
        final = result.next_observation("critic")
        pos, tilt = final[:, :3], torch.rad2deg(torch.acos(final[:, 11].clamp(-1.0, 1.0)))
        out = result.terminated | (pos.abs() > box).any(-1)   # with a margin, leaving the smaller box is a loss
        death[alive & out] = t + 1
        alive &= ~out
        min_z = torch.where(alive, torch.minimum(min_z, pos[:, 2]), min_z)
        max_pos = torch.where(alive, torch.maximum(max_pos, pos.abs().amax(1)), max_pos)
        first_upright = alive & (upright_step < 0) & (tilt < UPRIGHT_DEG)
        upright_step[first_upright] = t + 1
        z_upright[first_upright] = pos[first_upright, 2]
        if t >= steps - last_second:
            error_sum += torch.where(alive, result.info["position_error"], 0.0)
        if log_every and (t + 1) % log_every == 0:
            print(f"  {label} step {t + 1:3d}: {int(alive.sum())}/{n} alive, {int(committed.sum())} handed over, "
                  f"{time.perf_counter() - t0:6.1f} s", flush=True)
    if planner is not None:
        env_steps += planner.env_steps
    settle = torch.where(alive, error_sum / last_second, math.inf)
    return OracleOutcome(alive.clone(), death, min_z, max_pos, upright_step, z_upright, settle, handed_over_at,
                         executed, model_error, env_steps, time.perf_counter() - t0)


def replay(task: str, episodes: int, seed: int, actions: torch.Tensor) -> torch.Tensor:
    """Survival mask of command sequences ``[T, episodes, 4]`` flown open loop in a fresh evaluation environment.

    The environment is built and reset exactly as ``evaluate_policy`` does (observation noise only touches what a
    policy sees, not the dynamics), so nothing is overwritten: an end-to-end check of the oracle's result.
    """
    env = QuadrotorEnv(task, num_envs=episodes, seed=seed, curriculum=False)
    env.reset(seed=seed)
    alive = torch.ones(episodes, dtype=torch.bool)
    for t in range(actions.shape[0]):
        alive &= ~env.step(actions[t]).terminated
    return alive


# ----------------------------------------------------------------------------------------- analytic bound
def fall_bound(episodes: Episodes, robot: QuadrotorParams, limit: float, dt: float = 1e-4,
               seconds: float = 1.0) -> dict:
    """Upper bound on height for every episode from motor lag alone; proves infeasibility when it leaves the box.

    Every rotor starts at hover speed r0 and obeys r' = (c - r) / tau with c in [0, r_max], so at time t its speed
    lies in [r0 e^(-t/tau), r_max - (r_max - r0) e^(-t/tau)] (ignoring the delay only widens this). The body's tilt
    rate is at most |w_xy| (body rate across body z), and for Ixx = Iyy the gyroscopic term cannot change |w_xy|,
    so |w_xy|(t) <= |w_xy(0)| + int (2 a dT(s) + |tau_dist_xy|) / Ixy ds with dT the largest thrust difference of
    two rotors (2 a dT is the largest tilting torque of the X layout, arm a). Tilt(t) >= tilt0 - int |w_xy| ds,
    and the vertical force is at most T_max(t) max(0, cos(tilt_lb(t))) + F_dist_z: integrate twice for z_ub(t).
    Returns per episode the lowest z_ub before it turns upward, the time it reaches it, and whether it is below
    the box (proof that no controller keeps the episode).
    """
    p = episodes.params
    n = len(episodes)
    t = np.arange(0.0, seconds, dt)[None, :]
    tau = p.motor_time_constant.double().numpy()[:, None]
    kf = p.thrust_coefficient.double().numpy()[:, None]
    m = p.mass.double().numpy()[:, None]
    ixy = p.inertia[:, 0].double().numpy()[:, None]
    if not torch.allclose(p.inertia[:, 0], p.inertia[:, 1]):
        raise ValueError("the bound assumes Ixx = Iyy")
    arm = max(abs(x) for pos in robot.rotor_positions for x in pos[:2])
    r0 = episodes.state[:, dynamics.RPM].double().numpy()
    if not np.allclose(r0, r0[:, :1]):
        raise ValueError("the bound assumes all rotors start at the same speed")
    r0 = r0[:, :1]
    decay = np.exp(-t / tau)
    hi = robot.rpm_max - (robot.rpm_max - r0) * decay
    lo = r0 * decay
    d_thrust = kf * (hi * hi - lo * lo)
    t_max = 4.0 * kf * hi * hi
    tq_dist = p.disturbance_torque[:, :2].norm(dim=-1).double().numpy()[:, None]
    w_xy0 = episodes.state[:, 10:12].norm(dim=-1).double().numpy()[:, None]
    rate = w_xy0 + np.cumsum((2.0 * arm * d_thrust + tq_dist) / ixy, axis=1) * dt
    tilt0 = np.deg2rad(tilt_deg(episodes.state).double().numpy())[:, None]
    tilt_lb = np.clip(tilt0 - np.cumsum(rate, axis=1) * dt, 0.0, None)
    fz = p.disturbance_force[:, 2].double().numpy()[:, None]
    acc = (t_max * np.maximum(0.0, np.cos(tilt_lb)) + fz) / m - robot.gravity
    vz = episodes.state[:, 9].double().numpy()[:, None] + np.cumsum(acc, axis=1) * dt
    z = episodes.state[:, 2].double().numpy()[:, None] + np.cumsum(vz, axis=1) * dt
    k = z.argmin(1)
    z_low = z[np.arange(n), k]
    upright_idx = (tilt_lb <= 0.0).argmax(1)
    upright_t = np.where((tilt_lb <= 0.0).any(1), t[0, upright_idx], np.inf)
    return {"z_ub_min": z_low, "t_of_min": t[0, k], "earliest_upright_s": upright_t,
            "drop_before_upright_m": episodes.state[:, 2].double().numpy() - z[np.arange(n), upright_idx],
            "provably_lost": z_low < -limit}


# ----------------------------------------------------------------------------------------------- reporting
def start_rows(episodes: Episodes, ids: torch.Tensor, robot: QuadrotorParams) -> list[dict]:
    """Start state and the parameters that matter for recovery, one row per episode in ``ids``."""
    s, p = episodes.state, episodes.params
    tilts = tilt_deg(s)
    rows = []
    for i in ids.tolist():
        weight = float(p.mass[i]) * robot.gravity
        rows.append({"episode": i, "tilt_deg": round(float(tilts[i]), 1), "z_m": round(float(s[i, 2]), 3),
                     "vz_m_s": round(float(s[i, 9]), 3), "xy_m": [round(float(v), 3) for v in s[i, :2]],
                     "vxy_m_s": [round(float(v), 3) for v in s[i, 7:9]],
                     "angvel_rad_s": [round(float(v), 3) for v in s[i, 10:13]],
                     "motor_time_constant_s": round(float(p.motor_time_constant[i]), 4),
                     "delay_steps": int(p.delay_steps[i]),
                     "thrust_to_weight": round(4 * float(p.thrust_coefficient[i]) * robot.rpm_max ** 2 / weight, 3),
                     "inertia_xy_kg_m2": float(p.inertia[i, 0]),
                     "disturbance_force_N": [round(float(v), 4) for v in p.disturbance_force[i]]})
    return rows


def breakdown(episodes: Episodes, groups: dict[str, torch.Tensor]) -> dict[str, dict[str, dict[str, int]]]:
    """Counts of each boolean mask in ``groups`` per bin of start tilt, motor time constant and vz sign."""
    tilts, tau, vz = tilt_deg(episodes.state), episodes.params.motor_time_constant, episodes.state[:, 9]
    hard = (tilts >= 60) & (tau > 0.12)
    bins = {
        "start tilt (deg)": {"0-30": tilts < 30, "30-60": (tilts >= 30) & (tilts < 60), "60-90": tilts >= 60},
        "motor time constant (s)": {"<0.10": tau < 0.10, "0.10-0.12": (tau >= 0.10) & (tau <= 0.12),
                                    ">0.12": tau > 0.12},
        "initial vz": {"down (<0)": vz < 0, "zero (at rest)": vz == 0, "up (>0)": vz > 0},
        "tilt>60 & tau>0.12": {"yes": hard, "no": ~hard},
    }
    return {name: {b: {g: int((mask & sel).sum()) for g, mask in groups.items()} for b, sel in per.items()}
            for name, per in bins.items()}


def print_breakdown(table: dict[str, dict[str, dict[str, int]]]) -> None:
    for name, per in table.items():
        cols = list(next(iter(per.values())))
        print(f"\n{name:<24}" + "".join(f"{c:>14}" for c in cols))
        for b, counts in per.items():
            print(f"  {b:<22}" + "".join(f"{counts[c]:>14}" for c in cols))


def print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"{'ep':>4} {'tilt':>5} {'z':>6} {'vz':>6} {'tau':>6} {'dly':>3} {'T/W':>5} | {'pass':>4} {'dies':>4} "
          f"{'min z':>6} {'margin':>6} {'up@s':>5} {'z@up':>6} {'hold@s':>6} {'settle':>6} | {'up>=s':>5} {'z_ub':>6} "
          "proven")
    for r in rows:
        o, b = r["oracle"], r["bound"]
        print(f"{r['episode']:>4} {r['tilt_deg']:>5.1f} {r['z_m']:>6.2f} {r['vz_m_s']:>6.2f} "
              f"{r['motor_time_constant_s']:>6.3f} {r['delay_steps']:>3} {r['thrust_to_weight']:>5.2f} | "
              f"{str(o['kept_in_pass'] or '-'):>4} {o['death_step'] if o['death_step'] < 500 else '-':>4} "
              f"{o['min_z_m']:>6.3f} {o['margin_m']:>6.3f} {o['upright_s'] if o['upright_s'] is not None else '-':>5} "
              f"{o['z_at_upright_m'] if o['z_at_upright_m'] is not None else '-':>6} "
              f"{o['hold_controller_from_s'] if o['hold_controller_from_s'] is not None else '-':>6} "
              f"{o['settle_error_m'] if o['settle_error_m'] is not None else '-':>6} | "
              f"{b['earliest_upright_s']:>5.3f} {b['lowest_z_m']:>6.3f} {b['provably_lost']}")


def oracle_passes(episodes: Episodes, passes: tuple[OracleSettings, ...], task: str, compile: bool,
                  retry_limit: int | None = None) -> tuple[torch.Tensor, OracleOutcome | None, list[dict]]:
    """Fly ``episodes`` with each pass in turn, each on the episodes the passes before it lost.

    A later pass is skipped when more than ``retry_limit`` episodes are left for it (to bound the run time).
    Returns the pass that kept each episode (0: none), the merged outcome and a summary per pass.
    """
    m = len(episodes)
    kept_in_pass = torch.zeros(m, dtype=torch.long)
    outcome: OracleOutcome | None = None
    summary = []
    todo = torch.arange(m)
    for number, cfg in enumerate(passes, start=1):
        if todo.numel() == 0 or cfg.samples <= 0:
            break
        if number > 1 and retry_limit is not None and todo.numel() > retry_limit:
            summary.append({"settings": asdict(cfg), "episodes": todo.numel(), "skipped": "over retry_limit"})
            break
        label = f"pass {number}" + (f", margin {cfg.margin * 100:g} cm" if cfg.margin else "")
        out = run_oracle(episodes.select(todo), cfg, task, compile, label=label)
        if outcome is None:
            outcome = out
        else:
            for f in ("survived", "death_step", "min_z", "max_abs_pos", "upright_step", "z_at_upright",
                      "settle_error", "handed_over_at"):
                getattr(outcome, f)[todo] = getattr(out, f)
            outcome.actions[:, todo] = out.actions
        kept_in_pass[todo[out.survived]] = number
        summary.append(pass_summary(cfg, todo.numel(), out))
        print(f"{label}: oracle keeps {int(out.survived.sum())}/{todo.numel()} ({out.seconds:.0f} s, "
              f"{out.env_steps / 1e9:.2f} G planned steps, model error {out.model_error:.1e})", flush=True)
        todo = todo[~out.survived]
    return kept_in_pass, outcome, summary


def settings_from(args: argparse.Namespace) -> OracleSettings:
    return OracleSettings(samples=args.samples, horizon=args.horizon, knot_every=args.knot_every,
                          iterations_first=args.iterations_first, iterations_early=args.iterations_early,
                          plan_steps=args.plan_steps, replan_every=args.replan_every,
                          handover_every=args.handover_every, seed=args.seed_oracle)


def pass_summary(settings: OracleSettings, n: int, out: OracleOutcome) -> dict:
    return {"settings": asdict(settings), "episodes": n, "kept": int(out.survived.sum()), "seconds": out.seconds,
            "planning_env_steps": out.env_steps, "model_error": out.model_error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", type=Path, default=ROOT / "policies" / "crazyflie_hover" / "policy.onnx")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes")
    parser.add_argument("--samples", type=int, default=512, help="oracle rollouts per episode and iteration (pass 1)")
    parser.add_argument("--horizon", type=int, default=60, help="oracle horizon in control steps (pass 1)")
    parser.add_argument("--knot-every", type=int, default=4, help="control steps between noise knots")
    parser.add_argument("--iterations-first", type=int, default=12, help="optimisation iterations before step 0")
    parser.add_argument("--iterations-early", type=int, default=3, help="iterations per step in the first 0.6 s")
    parser.add_argument("--plan-steps", type=int, default=200, help="re-plan every step up to this step")
    parser.add_argument("--replan-every", type=int, default=5, help="re-plan period after --plan-steps")
    parser.add_argument("--retry-samples", type=int, default=4096,
                        help="pass 2, for the episodes pass 1 loses (0: no pass 2)")
    parser.add_argument("--retry-horizon", type=int, default=80)
    parser.add_argument("--handover-every", type=int, default=5,
                        help="try the verified hand-over to the hold controller this often (0: MPPI only)")
    parser.add_argument("--margins", type=float, nargs="*", default=[0.02, 0.05],
                        help="also ask which lost episodes the oracle keeps this far (m) inside the box")
    parser.add_argument("--margin-retry-limit", type=int, default=10,
                        help="with a margin, run pass 2 only when at most this many episodes are left")
    parser.add_argument("--check-survivors", type=int, default=50,
                        help="competence check: fly this many random policy-survived episodes with pass-1 settings")
    parser.add_argument("--seed-oracle", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="eager rollouts (slower)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "oracle_recoverability.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    compile = not args.no_compile
    if compile:  # each planner (one per pass and batch size) compiles its own rollout step
        torch._dynamo.config.cache_size_limit = max(64, torch._dynamo.config.cache_size_limit)
    t_start = time.perf_counter()

    # 1-2. The evaluation episodes and the policy's losses.
    policy, task = load_policy(args.policy)
    env, eps = evaluation_episodes(task, args.episodes, args.seed)
    result, record = evaluate_policy(policy, task=task, episodes=args.episodes, seed=args.seed, env=env,
                                     record=True)
    n, limit = args.episodes, env.task.termination.position_limit
    alive = record["alive"]
    lost = (~alive).nonzero().squeeze(-1)
    print(f"policy: {result.summary()}; loses {lost.numel()} of {n} episodes "
          f"({time.perf_counter() - t_start:.0f} s)", flush=True)

    # 3. The oracle on every lost episode, then a stronger pass on those it still loses.
    settings = settings_from(args)
    retry = replace(settings, samples=args.retry_samples, horizon=args.retry_horizon,
                    iterations_first=2 * settings.iterations_first, seed=settings.seed + 7)
    m = lost.numel()
    kept_in_pass, outcome, passes = oracle_passes(eps.select(lost), (settings, retry), task, compile)
    kept = kept_in_pass > 0
    oracle_lost = lost[~kept]

    # End-to-end check: the policy's commands where it survives, the oracle's where the policy loses, replayed in
    # a fresh, untouched evaluation environment.
    flown = record["actions"].clone()
    if outcome is not None:
        flown[:, lost] = outcome.actions
    replayed = replay(task, n, args.seed, flown)
    expected = alive.clone()
    expected[lost[kept]] = True
    print(f"replay in a fresh evaluation env: survival {replayed.float().mean():.1%} "
          f"(expected {expected.float().mean():.1%}; {int((replayed != expected).sum())} episodes differ)", flush=True)

    # 4. Competence check on episodes the policy survives: the oracle as used, and its MPPI alone.
    check: dict = {}
    if args.check_survivors > 0:
        gen = torch.Generator().manual_seed(args.seed_oracle + 99)
        survivors = alive.nonzero().squeeze(-1)
        pick = survivors[torch.randperm(survivors.numel(), generator=gen)[: args.check_survivors]].sort()[0]
        tilts, tau = tilt_deg(eps.state[pick]), eps.params.motor_time_constant[pick]
        check = {"episodes": pick.tolist(), "start_tilt_max_deg": float(tilts.max()),
                 "tilt_gt_60": int((tilts >= 60).sum()),
                 "tilt_gt_60_and_tau_gt_0.12": int(((tilts >= 60) & (tau > 0.12)).sum())}
        variants = {"oracle": settings}
        if settings.handover_every:
            variants["mppi_only"] = replace(settings, handover_every=0)
        for name, cfg in variants.items():
            out_c = run_oracle(eps.select(pick), cfg, task, compile, label=f"check {name}")
            check[name] = {"flown": pick.numel(), "kept": int(out_c.survived.sum()),
                           "lost": pick[~out_c.survived].tolist(),
                           "settled_within_5cm": int((out_c.settle_error < 0.05).sum()),
                           "min_margin_m": float(limit - out_c.max_abs_pos.max()),
                           "handed_over": int((out_c.handed_over_at >= 0).sum()), "seconds": out_c.seconds}
            print(f"competence check ({name}): keeps {check[name]['kept']}/{pick.numel()} policy-survived episodes, "
                  f"settles {check[name]['settled_within_5cm']} within 5 cm ({out_c.seconds:.0f} s)", flush=True)

    # 4b. The episodes the policy survives but does not settle within 5 cm (success needs both).
    positions = record["positions"][-round(env.task.control_rate_hz):]
    policy_settle = torch.where(alive, positions.norm(dim=-1).mean(0), math.inf)
    unsettled = (alive & (policy_settle >= SETTLE_THRESHOLD_M)).nonzero().squeeze(-1)
    if int((alive & (policy_settle < SETTLE_THRESHOLD_M)).sum()) != round(result.success_rate * n):
        print("warning: per-episode settle errors do not reproduce the evaluation's success count", flush=True)
    unsettled_check: dict = {"episodes": unsettled.tolist()}
    if unsettled.numel():
        out_u = run_oracle(eps.select(unsettled), settings, task, compile, label="unsettled")
        unsettled_check |= {"kept": int(out_u.survived.sum()),
                            "settled_within_5cm": int((out_u.settle_error < SETTLE_THRESHOLD_M).sum()),
                            "settle_error_max_m": float(out_u.settle_error.max()), "seconds": out_u.seconds}
        print(f"policy survives but does not settle {unsettled.numel()} episodes: the oracle settles "
              f"{unsettled_check['settled_within_5cm']} of them within 5 cm", flush=True)

    # 4c. How much room is there? Which lost episodes the oracle keeps a margin inside the box.
    margin_rows = []
    for margin in args.margins:
        cfgs = (replace(settings, margin=margin), replace(retry, margin=margin))
        kept_m, _, passes_m = oracle_passes(eps.select(lost), cfgs, task, compile, args.margin_retry_limit)
        lost_m = int((kept_m == 0).sum())
        margin_rows.append({"margin_m": margin, "kept": int((kept_m > 0).sum()), "lost": lost_m,
                            "survival_bound": 1.0 - lost_m / n, "passes": passes_m,
                            "lost_episodes": lost[kept_m == 0].tolist()})

    # 5. Report.
    bound = fall_bound(eps.select(lost), env.robot, limit) if m else None
    rows = start_rows(eps, lost, env.robot)
    dt = env.dt
    for j, row in enumerate(rows):
        up, hand = int(outcome.upright_step[j]), int(outcome.handed_over_at[j])
        settle = float(outcome.settle_error[j])
        row["oracle"] = {
            "kept_in_pass": int(kept_in_pass[j]) or None, "death_step": int(outcome.death_step[j]),
            "min_z_m": round(float(outcome.min_z[j]), 3), "margin_m": round(limit - float(outcome.max_abs_pos[j]), 4),
            "upright_s": round(up * dt, 2) if up >= 0 else None,
            "z_at_upright_m": round(float(outcome.z_at_upright[j]), 3) if up >= 0 else None,
            "settle_error_m": round(settle, 4) if math.isfinite(settle) else None,
            "hold_controller_from_s": round(hand * dt, 2) if hand >= 0 else None}
        row["bound"] = {"earliest_upright_s": round(float(bound["earliest_upright_s"][j]), 3),
                        "drop_before_upright_m": round(float(bound["drop_before_upright_m"][j]), 3),
                        "lowest_z_m": round(float(bound["z_ub_min"][j]), 3),
                        "provably_lost": bool(bound["provably_lost"][j])}
    provably = int(bound["provably_lost"].sum()) if m else 0
    settled = int((outcome.settle_error < SETTLE_THRESHOLD_M).sum()) if m else 0
    not_fixed = unsettled.numel() - unsettled_check.get("settled_within_5cm", 0)
    margins = torch.tensor([r["oracle"]["margin_m"] for r in rows if r["oracle"]["kept_in_pass"]])
    table = {
        "episodes": n,
        "policy survival": float(alive.float().mean()),
        "policy success": result.success_rate,
        "lost by policy": m,
        "kept by oracle": int(kept.sum()),
        "  of which settled within 5 cm": settled,
        "  of which margin to the box < 5 cm": int((margins < 0.05).sum()),
        "lost by oracle": oracle_lost.numel(),
        "survival bound (1 - oracle lost / N)": 1.0 - oracle_lost.numel() / n,
        **{f"kept {r['margin_m'] * 100:g} cm inside the box (bound)": f"{r['kept']}/{m} ({r['survival_bound']:.1%})"
           for r in margin_rows},
        "policy survives, not settled": unsettled.numel(),
        "  of which the oracle settles": unsettled_check.get("settled_within_5cm", 0),
        "success bound (oracle)": 1.0 - (m - settled + not_fixed) / n,
        "provably lost (analytic bound)": provably,
        "replay survival (fresh eval env)": float(replayed.float().mean()),
    }
    width = max(len(k) for k in table)
    print()
    for k, v in table.items():
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    oracle_lost_mask = torch.zeros(n, dtype=torch.bool)
    oracle_lost_mask[oracle_lost] = True
    groups = {"all": torch.ones(n, dtype=torch.bool), "policy lost": ~alive,
              "oracle kept": ~alive & ~oracle_lost_mask, "oracle lost": oracle_lost_mask}
    bd = breakdown(eps, groups)
    print_breakdown(bd)
    if oracle_lost.numel():
        print_rows(f"episodes the oracle loses ({oracle_lost.numel()}):",
                   [r for r in rows if not r["oracle"]["kept_in_pass"]])
    else:
        print("\nthe oracle loses no episode")
    tight = sorted((r for r in rows if r["oracle"]["kept_in_pass"]), key=lambda r: r["oracle"]["margin_m"])[:10]
    print_rows("the 10 policy-lost episodes the oracle keeps with the least margin to the box:", tight)
    wall = time.perf_counter() - t_start
    print(f"\nwall time {wall:.0f} s")
    report = {
        "benchmark": "oracle_recoverability", "policy": str(args.policy), "task": task, "seed": args.seed,
        "table": table, "policy_eval": result.to_dict(), "oracle_passes": passes,
        "model_error_max": max((p["model_error"] for p in passes), default=0.0),
        "replay": {"survival": float(replayed.float().mean()), "expected": float(expected.float().mean()),
                   "differ": (replayed != expected).nonzero().squeeze(-1).tolist()},
        "competence_check": check, "unsettled_by_policy": unsettled_check, "margins": margin_rows,
        "breakdown": bd, "upright_deg": UPRIGHT_DEG,
        "policy_lost_episodes": rows, "oracle_lost_episodes": oracle_lost.tolist(),
        "command": "python bench/oracle_recoverability.py " + " ".join(sys.argv[1:]),
        "wall_s": wall, "torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "compiled": compile,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
