"""Generalized advantage estimation (Schulman et al. 2016), batched over environments."""

from __future__ import annotations

import torch


def generalized_advantages(rewards: torch.Tensor, values: torch.Tensor, last_values: torch.Tensor,
                           dones: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns for a rollout ``[T, N]``.

    ``dones[t]`` marks that the episode ended at step t (no bootstrapping across it); time-outs are handled by
    the caller adding ``gamma * V(final observation)`` to their reward, as rsl_rl does.
        delta_t = r_t + gamma V(s_{t+1}) (1 - d_t) - V(s_t);   A_t = delta_t + gamma lam (1 - d_t) A_{t+1}
    """
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_value = last_values
    not_done = 1.0 - dones.float()
    for t in reversed(range(steps)):
        delta = rewards[t] + gamma * next_value * not_done[t] - values[t]
        next_advantage = delta + gamma * lam * not_done[t] * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages, advantages + values
