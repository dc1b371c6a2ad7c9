"""Replay of failed episode starts: a training-only bias of the start distribution towards the hard starts.

Why: the shipped hover policy loses ~10% of evaluation episodes, almost all of them in the first second from
tilted, falling starts on sluggish robots, which an oracle on the true model keeps
(``bench/oracle_recoverability.py``). Those starts are a few percent of the training data. Replaying the starts
(state and randomized parameters) of episodes that terminated, as a fraction of new episodes, puts more of
the data where the policy fails while every replayed start still comes from the task's own distribution
(the idea of prioritized starts / prioritized level replay, Jiang et al. 2021). Evaluation never replays.
"""

from __future__ import annotations

import torch

from robot_ac.sim.quadrotor.params import QuadrotorBatchParams


class FailedStartReplay:
    """Each environment's current episode start and a ring of the starts of episodes that terminated."""

    def __init__(self, fraction: float, num_envs: int, state_size: int, param_rows: int, capacity: int,
                 device: torch.device) -> None:
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"replay fraction must lie in (0, 1), got {fraction}")
        self.fraction = fraction
        self.capacity = capacity
        self.count = 0  # starts recorded so far (the ring holds the latest `capacity`)
        self.start_state = torch.zeros(state_size, num_envs, device=device)
        self.start_values = torch.zeros(param_rows, num_envs, device=device)
        self.start_delay = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.ring_state = torch.zeros(state_size, capacity, device=device)
        self.ring_values = torch.zeros(param_rows, capacity, device=device)
        self.ring_delay = torch.zeros(capacity, dtype=torch.long, device=device)

    def begin(self, columns: torch.Tensor, params: QuadrotorBatchParams, started: torch.Tensor | None = None) -> None:
        """Remember the starts of the environments in ``started`` (all when None): state right after reset."""
        if started is None:
            self.start_state.copy_(columns)
            self.start_values.copy_(params.values)
            self.start_delay.copy_(params.delay_steps)
            return
        self.start_state[:, started] = columns[:, started]
        self.start_values[:, started] = params.values[:, started]
        self.start_delay[started] = params.delay_steps[started]

    def record_failures(self, terminated: torch.Tensor) -> None:
        """Push the starts of the episodes that just terminated into the ring (before ``begin`` overwrites them)."""
        ids = terminated.nonzero().squeeze(-1)
        n = int(ids.numel())
        if n == 0:
            return
        if n > self.capacity:
            ids, n = ids[-self.capacity:], self.capacity
        slots = (torch.arange(n, device=ids.device) + self.count) % self.capacity
        self.ring_state[:, slots] = self.start_state[:, ids]
        self.ring_values[:, slots] = self.start_values[:, ids]
        self.ring_delay[slots] = self.start_delay[ids]
        self.count += n

    def mix_into(self, state: torch.Tensor, params: QuadrotorBatchParams, generator: torch.Generator) -> int:
        """Overwrite the first ``fraction`` of freshly sampled starts ``[*, n]`` with recorded failures; returns how
        many were replayed (none until a failure was recorded)."""
        held = min(self.count, self.capacity)
        k = int(self.fraction * state.shape[1])
        if held == 0 or k == 0:
            return 0
        pick = torch.randint(held, (k,), generator=generator, device=state.device)
        state[:, :k] = self.ring_state[:, pick]
        params.values[:, :k] = self.ring_values[:, pick]
        params.delay_steps[:k] = self.ring_delay[pick]
        return k
