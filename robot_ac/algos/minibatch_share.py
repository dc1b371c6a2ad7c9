"""Half of each PPO minibatch's gradient computed by a helper process, in shared memory.

Why: with the update in a learner process (``robot_ac.algos.async_update``) the learner is the bottleneck on a
2-core CPU (~0.27 s per update of 16k samples against ~0.06-0.12 s to collect them), and the trainer waits for it.
Here the learner offers the second half of every minibatch; the trainer takes it when it is idle and otherwise
the learner computes it too. The gradient is the same either way: the mean of the two halves, added in the same
order, with the second half's CAPS noise drawn by the learner; so a run does not depend on the timing.

The protocol is one state word under a lock: the learner offers (``OFFERED``), exactly one side claims it
(``HELPER`` or ``LEARNER``), and a helper that claimed it posts its gradient and marks it ``DONE``. Everything else
is written before the state word that publishes it, and read after.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterable, Sequence

import torch

IDLE, OFFERED, HELPER, DONE, LEARNER = range(5)
# Loss statistics a chunk reports, in a fixed order (the ones a configuration does not compute are absent).
LOSS_KEYS = ("surrogate", "value_loss", "entropy", "kl", "caps_temporal", "caps_spatial", "loss")
HELPER_TIMEOUT_S = 60.0  # a helper holding a claim this long is taken for dead


class HelperLost(RuntimeError):
    """The helper claimed half of a minibatch and never finished it."""


class MinibatchShare:
    """Shared buffers for one learner and one helper; built by the trainer, handed to the learner at its start."""

    def __init__(self, context: multiprocessing.context.BaseContext, samples: int, width: int, policy_obs: int,
                 offered_rows: int, caps_rows: int, noisy: int, parameters: int, action_size: int) -> None:
        def shared(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.zeros(*shape, dtype=dtype).share_memory_()

        self.packed = shared(samples, width)
        self.next_policy_obs = shared(samples, policy_obs)
        self.rows = shared(offered_rows, dtype=torch.int64)
        self.noise = shared(caps_rows, noisy)
        self.parameters = shared(parameters)
        self.gradients = shared(parameters)
        self.losses = shared(len(LOSS_KEYS))
        self.rollout_std = shared(action_size)
        self.spatial_sigma = shared(noisy)
        self.state = shared(1, dtype=torch.int32)
        self.lock = context.Lock()

    # --- the learner's side

    def begin_update(self, rollout_std: torch.Tensor, spatial_sigma: torch.Tensor | None) -> None:
        """Constants of this update; the packed rows are written straight into ``packed`` by the learner."""
        self.rollout_std.copy_(rollout_std)
        if spatial_sigma is not None:
            self.spatial_sigma.copy_(spatial_sigma)

    def offer(self, parameters: Sequence[torch.nn.Parameter], rows: torch.Tensor, noise: torch.Tensor | None
              ) -> None:
        with torch.no_grad():
            torch.cat([p.reshape(-1) for p in parameters], out=self.parameters)
        self.rows.copy_(rows)
        if noise is not None:
            self.noise.copy_(noise)
        self.state[0] = OFFERED

    def claim_for_learner(self) -> bool:
        """True when the helper has not taken the offer: the learner computes it."""
        with self.lock:
            if int(self.state[0]) == OFFERED:
                self.state[0] = LEARNER
                return True
        return False

    def wait_for_helper(self, keys: Iterable[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The helper's gradient (flat) and losses, once it has posted them."""
        deadline = time.monotonic() + HELPER_TIMEOUT_S
        parent = multiprocessing.parent_process()
        while int(self.state[0]) != DONE:
            if time.monotonic() > deadline or (parent is not None and not parent.is_alive()):
                raise HelperLost("the helper process took half a minibatch and did not finish it")
            time.sleep(50e-6)
        losses = {k: self.losses[LOSS_KEYS.index(k)].clone() for k in keys}
        return self.gradients.clone(), losses

    # --- the helper's side

    def try_claim(self) -> bool:
        """Take the offered half-minibatch, if there is one and the learner has not taken it back."""
        if int(self.state[0]) != OFFERED:  # read without the lock: a cheap poll
            return False
        with self.lock:
            if int(self.state[0]) != OFFERED:
                return False
            self.state[0] = HELPER
        return True

    def post(self, parameters: Sequence[torch.nn.Parameter], losses: dict[str, torch.Tensor]) -> None:
        torch.cat([p.grad.reshape(-1) for p in parameters], out=self.gradients)
        for key, value in losses.items():
            self.losses[LOSS_KEYS.index(key)] = value
        self.state[0] = DONE
