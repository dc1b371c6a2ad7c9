"""Action-safety regularizers: named, weighted, switchable terms, each logged on its own.

Formulas and sources:
- CAPS (Mysore et al., "Regularizing Action Policies for Smooth Control with Reinforcement Learning", ICRA 2021,
  arXiv 2012.06644): temporal L_T = ||pi(s_t) - pi(s_{t+1})||_2, spatial L_S = ||pi(s) - pi(s~)||_2 with
  s~ ~ N(s, sigma_s), sigma_s the expected measurement noise; added to the actor loss as lambda_T L_T + lambda_S L_S.
- Swaddling (Ishuov et al., "Symphony", arXiv 2512.10477, S3 version of December 2025): a penalty on the actor's
  learned noise scale sigma, not on the actions: L_sw = mean[ Omega(sigma^(1/beta_detached)) + beta sigma ln sigma
  + Omega(beta^2) ], Omega(x) = ln((1 + x) / (1 - x)) = 2 atanh(x).
- Symphony's bounded ("harmless") noise: eps = clip(N(0, 1), -e, e) / e, a = tanh(sigma A + eps).
- Symphony's fading replay: sampling weight w_i = tanh((pi i / N)^e), index 0 the oldest transition.
- Reward-side action-rate and action-magnitude penalties (legged_gym, Isaac Lab) live in the task's reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from robot_ac.config import bounded

E = math.e


@dataclass(frozen=True)
class CapsConfig:
    """CAPS weights; 0 switches a term off. lambda_S range [0, 0.1], lambda_T [0, 1] (Mysore et al. 2021)."""

    temporal: float = bounded(0.0, min=0.0)
    spatial: float = bounded(0.0, min=0.0)
    spatial_sigma_scale: float = bounded(1.0, min=0.0, doc="multiplies each policy field's declared noise_std")
    sample_fraction: float = bounded(1.0, min=0.0, max=1.0, exclusive_min=True,
                                     doc="share of each minibatch the CAPS terms are estimated on (PPO)")


def caps_temporal(actions_t: torch.Tensor, actions_next: torch.Tensor, valid: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Mean ||pi(s_t) - pi(s_{t+1})||_2 over transitions that stay in the same episode."""
    norms = (actions_t - actions_next).norm(dim=-1)
    if valid is None:
        return norms.mean()
    valid = valid.float()
    return (norms * valid).sum() / valid.sum().clamp_min(1.0)


def caps_spatial(actions: torch.Tensor, actions_perturbed: torch.Tensor) -> torch.Tensor:
    """Mean ||pi(s) - pi(s~)||_2 for s~ drawn around s."""
    return (actions - actions_perturbed).norm(dim=-1).mean()


def omega(x: torch.Tensor) -> torch.Tensor:
    """Symphony's barrier Omega(x) = ln((1 + x) / (1 - x)); grows without bound as x -> 1."""
    return 2.0 * torch.atanh(x)


def swaddling_loss(sigma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Symphony S3 swaddling: mean of Omega(sigma^(1/beta_bar)) + beta sigma ln sigma + Omega(beta^2)."""
    beta_bar = beta.detach()
    return (omega(sigma.pow(1.0 / beta_bar)) + beta * sigma * torch.log(sigma) + omega(beta * beta)).mean()


def harmless_noise(shape: tuple[int, ...], generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Symphony's bounded exploration noise: clip(N(0, 1), -e, e) / e, so every sample lies in [-1, 1]."""
    noise = torch.randn(shape, generator=generator, device=device)
    return noise.clamp(-E, E) / E


def fading_weights(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Symphony's fading replay weights tanh((pi i / N)^e) for i = 0 (oldest) .. N - 1 (newest)."""
    i = torch.arange(size, device=device, dtype=torch.float64)
    return torch.tanh((math.pi * i / size) ** E).float()
