"""Robot-agnostic batched environment interface.

Every robot (quadrotor now; arms with joint-space state and humanoids later) implements ``VecEnv``: all state
lives in tensors ``[num_envs, ...]`` on one device, observations come as named groups (``policy``, ``critic``),
and environments that end are reset automatically and individually.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch

from robot_ac.sim.contract import Contract


@dataclass
class StepResult:
    """What ``VecEnv.step`` returns.

    ``observations`` are those to act on next (already reset where an episode ended);
    ``info["final_observations"]`` holds the observations of the state each step actually reached, which
    differ from ``observations`` only where ``terminated | truncated``: learners bootstrap from those.
    """

    observations: dict[str, torch.Tensor]
    reward: torch.Tensor      # [N] float
    terminated: torch.Tensor  # [N] bool: the episode ended in a failure state (no bootstrapping)
    truncated: torch.Tensor   # [N] bool: the episode ran out of time (bootstrap from final observations)
    info: dict[str, torch.Tensor] = field(default_factory=dict)


class VecEnv(ABC):
    """A batch of ``num_envs`` independent environments stepped together."""

    num_envs: int
    device: torch.device
    contract: Contract

    @property
    def action_size(self) -> int:
        return self.contract.action_size

    def observation_size(self, group: str) -> int:
        try:
            return self.contract.groups[group].size
        except KeyError:
            raise KeyError(f"no observation group {group!r}; available: {sorted(self.contract.groups)}") from None

    @abstractmethod
    def reset(self, seed: int | None = None) -> dict[str, torch.Tensor]:
        """Reset every environment (re-seeding the generator when ``seed`` is given)."""

    @abstractmethod
    def step(self, actions: torch.Tensor) -> StepResult:
        """Apply normalized actions ``[N, action_size]`` in [-1, 1] for one control period."""
