"""A batched scalar linear-quadratic regulator task whose optimal policy is known in closed form.

Used to test learners: x' = a x + b u, reward -(q x^2 + r u^2), discount gamma. The optimal discounted gain
comes from the scalar discounted Riccati equation (Bertsekas, Dynamic Programming and Optimal Control, vol. 1):
    P = q + gamma a^2 P - (gamma a b P)^2 / (r + gamma b^2 P),   u* = -K x,  K = gamma a b P / (r + gamma b^2 P)
"""

from __future__ import annotations

import torch

from robot_ac.sim.contract import ActionField, Contract, GroupSpec, ObsField
from robot_ac.sim.vec_env import StepResult, VecEnv


def lqr_optimal_gain(a: float, b: float, q: float, r: float, gamma: float, iterations: int = 10_000) -> float:
    p = q
    for _ in range(iterations):
        p = q + gamma * a * a * p - (gamma * a * b * p) ** 2 / (r + gamma * b * b * p)
    return gamma * a * b * p / (r + gamma * b * b * p)


class ScalarLQREnv(VecEnv):
    """Both observation groups hold x; the action is u in [-1, 1]."""

    def __init__(self, num_envs: int, a: float = 1.0, b: float = 0.5, q: float = 1.0, r: float = 0.5,
                 episode_steps: int = 40, seed: int = 0, device: str = "cpu") -> None:
        self.num_envs, self.device = num_envs, torch.device(device)
        self.a, self.b, self.q, self.r, self.episode_steps = a, b, q, r, episode_steps
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        group = GroupSpec("x", (ObsField("x", 1, "1", "none"),))
        self.contract = Contract("lqr", "scalar-lqr", 1.0, {"policy": group, "critic": group},
                                 (ActionField("u", 1, "1", -1.0, 1.0, -1.0, 1.0),), 0)
        self.x = torch.zeros(num_envs, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.total_env_steps = 0

    def _obs(self) -> dict[str, torch.Tensor]:
        return {"policy": self.x[:, None].clone(), "critic": self.x[:, None].clone()}

    def _sample(self, n: int) -> torch.Tensor:
        return 2 * torch.rand(n, generator=self.generator, device=self.device) - 1

    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        if seed is not None:
            self.generator.manual_seed(seed)
        self.x = self._sample(self.num_envs)
        self.t.zero_()
        return self._obs()

    def step(self, actions: torch.Tensor) -> StepResult:
        u = actions[:, 0].clamp(-1, 1)
        reward = -(self.q * self.x**2 + self.r * u**2)
        self.x = self.a * self.x + self.b * u
        self.t += 1
        truncated = self.t >= self.episode_steps
        terminated = torch.zeros_like(truncated)
        final = self._obs()
        obs = final
        if truncated.any():
            obs = {k: v.clone() for k, v in final.items()}
            ids = truncated.nonzero().squeeze(-1)
            self.x[ids] = self._sample(ids.numel())
            self.t[ids] = 0
            obs["policy"][ids, 0] = self.x[ids]
            obs["critic"][ids, 0] = self.x[ids]
        self.total_env_steps += self.num_envs
        return StepResult(obs, reward, terminated, truncated, {"final_observations": final})
