"""The success criterion, shared by ``robot-ac eval``, ``--until-success`` and every benchmark.

1000 episodes of 5 s from the task's randomized start states, with domain randomization and observation noise
on. An episode succeeds when it is never terminated and its mean position error over the last second is below
5 cm; a policy succeeds when at least 95% of episodes do (robot_ac issue "Training", success criterion).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from robot_ac.sim.quadrotor.env import QuadrotorEnv

SETTLE_THRESHOLD_M = 0.05
SUCCESS_RATE_REQUIRED = 0.95
HIGH_FREQUENCY_HZ = 10.0

PolicyFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EvalResult:
    episodes: int
    survival_rate: float
    success_rate: float
    settle_error_mean_m: float
    settle_error_median_m: float
    settle_error_p95_m: float
    mean_abs_delta_action: float
    motor_saturation_fraction: float
    high_frequency_power_share: float
    succeeded: bool
    stopped_at_s: float | None = None  # set when the evaluation stopped once the criterion could no longer hold

    def to_dict(self) -> dict:
        """All fields; ``stopped_at_s`` only for a stopped evaluation."""
        out = asdict(self)
        if out["stopped_at_s"] is None:
            del out["stopped_at_s"]
        return out

    def summary(self) -> str:
        if self.stopped_at_s is not None:
            return (f"stopped at {self.stopped_at_s:.2f} s: more than {1 - SUCCESS_RATE_REQUIRED:.0%} of episodes "
                    f"had terminated, so the criterion could not hold")
        return (f"success {self.success_rate:.1%} (survival {self.survival_rate:.1%}), settle error median "
                f"{self.settle_error_median_m * 100:.2f} cm, |da| {self.mean_abs_delta_action:.4f}, "
                f"saturation {self.motor_saturation_fraction:.2%}, >{HIGH_FREQUENCY_HZ:g} Hz power "
                f"{self.high_frequency_power_share:.1%}")


@torch.no_grad()
def evaluate_policy(policy: PolicyFn, task: str = "quadrotor-hover", episodes: int = 1000, seed: int = 12345,
                    device: str | torch.device = "cpu", env: QuadrotorEnv | None = None,
                    record: bool = False, stop_when_hopeless: bool = False
                    ) -> EvalResult | tuple[EvalResult, dict[str, torch.Tensor]]:
    """Run one episode per environment, ``episodes`` in parallel, and score them.

    ``stop_when_hopeless`` ends the evaluation as soon as more episodes have terminated than the success criterion
    allows (training uses it: early evaluations then cost a fraction of the 5 s). Such a result is marked by
    ``stopped_at_s``; its survival and success rates and settle errors are NaN (the share alive at the stop is
    ~95% by construction, so it would say nothing).
    """
    evaluation = Evaluation(policy, task, episodes, seed, device, env, record, stop_when_hopeless)
    result = evaluation.finish()
    return (result, evaluation.recording()) if record else result


class Evaluation:
    """The success criterion, runnable a few steps at a time: training evaluates in the time it would idle."""

    def __init__(self, policy: PolicyFn, task: str = "quadrotor-hover", episodes: int = 1000, seed: int = 12345,
                 device: str | torch.device = "cpu", env: QuadrotorEnv | None = None, record: bool = False,
                 stop_when_hopeless: bool = False) -> None:
        env = env or QuadrotorEnv(task, num_envs=episodes, device=device, seed=seed, curriculum=False)
        if env.num_envs < episodes:
            raise ValueError(f"evaluation env has {env.num_envs} environments, need at least {episodes}")
        # Environments past ``episodes`` run along unscored: training evaluates in an environment as large as its
        # own, whose compiled step it then shares (robot_ac.training.runner).
        self.policy, self.env, self.episodes = policy, env, episodes
        self.stop_when_hopeless = stop_when_hopeless
        self.steps = env.episode_steps
        self.last_second = max(1, round(env.task.control_rate_hz))
        self.allowed_failures = math.floor((1.0 - SUCCESS_RATE_REQUIRED) * episodes + 1e-9)
        with torch.no_grad():
            self.obs = env.reset(seed=seed)
        self.alive = torch.ones(episodes, dtype=torch.bool, device=env.device)
        self.error_sum = torch.zeros(episodes, device=env.device)
        self.actions = torch.zeros(self.steps, episodes, env.action_size, device=env.device)
        self.positions = torch.zeros(self.steps, episodes, 3, device=env.device) if record else None
        self.t = 0
        self.result: EvalResult | None = None

    @torch.no_grad()
    def advance(self, steps: int = 1) -> EvalResult | None:
        """Run up to ``steps`` control steps; the result once the evaluation is over, else None."""
        env = self.env
        for _ in range(steps):
            if self.result is not None:
                break
            t = self.t
            if (self.stop_when_hopeless and t % 10 == 0
                    and int((~self.alive).sum()) > self.allowed_failures):
                self.result = _stopped(self.episodes, self.actions[:t], t / env.task.control_rate_hz)
                break
            action = self.policy(self.obs["policy"]).to(env.device).float()
            n = self.episodes
            self.actions[t] = torch.nan_to_num(action[:n], nan=0.0).clamp(-1.0, 1.0)
            step = env.step(action)
            self.alive &= ~step.terminated[:n]
            if self.positions is not None:
                self.positions[t] = step.next_observation("critic")[:n, :3]
            if t >= self.steps - self.last_second:
                self.error_sum += torch.where(self.alive, step.info["position_error"][:n], 0.0)
            self.obs = step.observations
            self.t += 1
            if self.t == self.steps:
                self.result = self._score()
        return self.result

    def finish(self) -> EvalResult:
        while self.advance(self.steps) is None:
            pass
        return self.result

    def recording(self) -> dict[str, torch.Tensor]:
        if self.positions is None:
            raise ValueError("this evaluation was not recording")
        return {"actions": self.actions.cpu(), "positions": self.positions.cpu(), "alive": self.alive.cpu()}

    def _score(self) -> EvalResult:
        alive, steps, env = self.alive, self.steps, self.env
        settle = torch.where(alive, self.error_sum / self.last_second, math.inf)
        success = alive & (settle < SETTLE_THRESHOLD_M)
        survivors = settle[alive]
        delta = (self.actions[1:] - self.actions[:-1]).abs()
        alive_mask = alive[None, :, None]
        mean_delta = (delta * alive_mask).sum() / (alive_mask.sum() * (steps - 1) * env.action_size).clamp_min(1)
        saturated = ((self.actions.abs() >= 0.999) * alive_mask).sum()
        saturation = saturated / (alive_mask.sum() * steps * env.action_size).clamp_min(1)
        return EvalResult(
            episodes=self.episodes,
            survival_rate=float(alive.float().mean()),
            success_rate=float(success.float().mean()),
            settle_error_mean_m=float(survivors.mean()) if survivors.numel() else math.inf,
            settle_error_median_m=float(survivors.median()) if survivors.numel() else math.inf,
            settle_error_p95_m=float(torch.quantile(survivors, 0.95)) if survivors.numel() else math.inf,
            mean_abs_delta_action=float(mean_delta),
            motor_saturation_fraction=float(saturation),
            high_frequency_power_share=high_frequency_share(self.actions[:, alive], env.task.control_rate_hz),
            succeeded=bool(success.float().mean() >= SUCCESS_RATE_REQUIRED),
        )


def _stopped(episodes: int, actions: torch.Tensor, seconds: float) -> EvalResult:
    """The partial result of an evaluation stopped because too many episodes had already terminated."""
    delta = (actions[1:] - actions[:-1]).abs()
    return EvalResult(
        episodes=episodes, survival_rate=math.nan, success_rate=math.nan,
        settle_error_mean_m=math.nan, settle_error_median_m=math.nan, settle_error_p95_m=math.nan,
        mean_abs_delta_action=float(delta.mean()) if delta.numel() else math.nan,
        motor_saturation_fraction=float((actions.abs() >= 0.999).float().mean()) if actions.numel() else math.nan,
        high_frequency_power_share=math.nan, succeeded=False, stopped_at_s=seconds)


def high_frequency_share(actions: torch.Tensor, rate_hz: float, cutoff_hz: float = HIGH_FREQUENCY_HZ) -> float:
    """Share of motor-command power above ``cutoff_hz`` (per-episode mean removed), over ``[T, N, A]``."""
    if actions.shape[1] == 0:
        return math.nan
    signal = actions - actions.mean(0, keepdim=True)
    power = torch.fft.rfft(signal, dim=0).abs() ** 2
    freqs = torch.fft.rfftfreq(actions.shape[0], d=1.0 / rate_hz)
    total = power.sum()
    if total <= 0:
        return 0.0
    return float(power[freqs > cutoff_hz].sum() / total)
