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
    ``info["final_observations"]`` holds, where ``terminated | truncated``, the observations of the state the
    episode ended in, which learners bootstrap from. Its other rows are unspecified: the fused CPU step leaves them
    unwritten (as Gymnasium's vector environments give final observations only for the environments that ended), so
    as not to write every observation twice. ``next_observation`` gives the whole batch.
    """

    observations: dict[str, torch.Tensor]
    reward: torch.Tensor      # [N] float
    terminated: torch.Tensor  # [N] bool: the episode ended in a failure state (no bootstrapping)
    truncated: torch.Tensor   # [N] bool: the episode ran out of time (bootstrap from final observations)
    info: dict[str, torch.Tensor] = field(default_factory=dict)

    def next_observation(self, group: str) -> torch.Tensor:
        """The ``group`` observation of the state each environment reached this step, before any reset: the final
        observation where an episode ended, the one to act on next elsewhere."""
        ended = (self.terminated | self.truncated)[:, None]
        return torch.where(ended, self.info["final_observations"][group], self.observations[group])

    def next_observations(self) -> dict[str, torch.Tensor]:
        """``next_observation`` of every group."""
        return {group: self.next_observation(group) for group in self.observations}


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
