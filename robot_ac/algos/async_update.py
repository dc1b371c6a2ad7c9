"""PPO's update in a learner process, overlapped with the collection of the next rollout.

Why: on a 2-core CPU one PPO iteration (1024 environments x 16 steps) spends ~0.11 s collecting and ~0.28 s
updating, one core busy and the other idle; torch's intra-op threads do not help ops this small (two threads
measured slower for the whole loop). Here rollout k+1 is collected on one core while rollout k is learned from on
the other: 55-57k env-steps/s against 41-43k in one process, measured here. The rollout then comes from the policy
one update old, which the decoupled objective corrects (``PPO.behavior_lags``).

The schedule is fixed, so a run stays deterministic: rollout k+1 always uses the weights of update k-1, whatever
the timing; a checkpoint waits for the update in flight but does not change which weights the next rollout uses.
"""

from __future__ import annotations

import contextlib
import signal
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

import torch
import torch.multiprocessing  # noqa: F401 - registers the reductions that share tensors with the learner

from robot_ac.algos.learner_host import learner_context
from robot_ac.algos.minibatch_share import MinibatchShare
from robot_ac.algos.ppo import PPO, PPOConfig


class LearnerFailed(RuntimeError):
    """The learner process raised something other than a non-finite loss, or died."""


class AsyncUpdater:
    """Double-buffered rollouts in shared memory; the learner writes new policy weights back into shared memory.

    The local ``ppo`` acts and records into ``ppo.storage`` as usual and owns the observation normalizers; the
    learner owns the critic, the optimizer and the learning-rate schedule.
    """

    def __init__(self, ppo: PPO, seed: int, threads: int = 1) -> None:
        if ppo.device.type != "cpu":
            raise ValueError("async_update overlaps CPU cores; on a GPU leave ppo.async_update off")
        self.ppo = ppo
        self.buffers = [ppo.storage, {k: torch.zeros_like(v) for k, v in ppo.storage.items()}]
        for buffer in self.buffers:
            for tensor in buffer.values():
                tensor.share_memory_()
        self.weights = {k: p.detach().clone().share_memory_() for k, p in ppo.policy.named_parameters()}
        self.normalizers = [_normalizer_state(ppo) for _ in self.buffers]
        for snapshot in self.normalizers:
            for tensor in snapshot.values():
                tensor.share_memory_()
        self.current = 0
        self._in_flight = False
        self._ready: dict[str, float] | None = None  # stats of an update collected early (by a checkpoint)
        self._loaded = False
        context = learner_context()  # a fork of a preloaded server; fork of this process is unsafe (threads)
        # The trainer computes half of a minibatch's gradient whenever it would otherwise wait.
        self.share = ppo.make_minibatch_share(context) if ppo.cfg.share_minibatches else None
        self._helper: PPO | None = None
        if self.share is not None:
            self._helper = PPO(ppo.cfg, *ppo.sizes, ppo.device, ppo.policy_noise_std, rollout_storage=False)
            self._helper.behavior_lags = True
            # Loaded (or compiled) now: starting the learner below waits until the learner host has imported torch's
            # compiler (~5.5 s after launch here), and the ~1.5-2 s of loading fit in that wait. Loaded at the first
            # offer instead, it kept the trainer from helping through its first ~2 s of training.
            self._helper.warm_up_update()
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_learner_main, name="robot-ac-learner", daemon=True,
            args=(child, ppo.cfg, ppo.sizes, ppo.policy_noise_std, self.buffers, self.weights, self.normalizers,
                  self.share, seed, threads))
        self._process.start()
        child.close()

    def submit(self, last_obs: dict[str, torch.Tensor], idle: Callable[[], bool] | None = None
               ) -> dict[str, float]:
        """Hand the rollout just collected to the learner; return the previous update's statistics (empty the
        first time) after loading the weights it produced, which the next rollout uses.

        While the previous update is still running, the trainer takes the half-minibatches the learner offers
        (``share_minibatches``) and, in turn, calls ``idle()`` to do other work (a training evaluation); ``idle``
        returns False when it has nothing left to do.
        """
        self.ppo.finish_rollout(last_obs)
        for key, tensor in _normalizer_state(self.ppo).items():
            self.normalizers[self.current][key].copy_(tensor)
        if self._in_flight:
            while not self._conn.poll():
                helped = self.help()
                busy = idle() if idle is not None else False
                if not helped and not busy:
                    if self.share is None:
                        break  # nothing to do but wait
                    time.sleep(100e-6)
        stats = self._finish_previous()
        if not self._loaded:  # the first rollout: start the learner from the local state (fresh or resumed)
            self._conn.send(("load", self.ppo.state_dict()))
            self._loaded = True
        self._conn.send(("update", self.current))
        self._in_flight = True
        self.current ^= 1
        self.ppo.storage = self.buffers[self.current]
        return stats

    def help(self) -> bool:
        """Compute the half-minibatch the learner offers, if any; True when there was one."""
        if self._helper is None:
            return False
        return self._helper.help_with(self.share)

    def state_dict(self) -> dict:
        """The learner's state (critic, optimizer, newest policy); waits for the update in flight."""
        if not self._loaded:
            return self.ppo.state_dict()
        self._collect_in_flight()
        self._conn.send(("state",))
        return self._receive("state")

    def stop(self) -> None:
        """Ask the learner to exit without waiting for it (``close`` waits), so its exit overlaps other work."""
        if self._process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(("stop",))

    def close(self) -> None:
        self.stop()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
        self._conn.close()

    def _collect_in_flight(self) -> None:
        """Wait for the update in flight; its statistics wait in ``_ready`` and its weights in shared memory."""
        if self._in_flight:
            self._ready = self._receive("done")
            self._in_flight = False

    def _finish_previous(self) -> dict[str, float]:
        self._collect_in_flight()
        if self._ready is None:
            return {}
        stats, self._ready = self._ready, None
        with torch.no_grad():
            for key, parameter in self.ppo.policy.named_parameters():
                parameter.copy_(self.weights[key])
        return stats

    def _receive(self, expected: str):
        try:
            kind, payload = self._conn.recv()
        except EOFError as err:
            raise LearnerFailed(f"the learner process exited unexpectedly (exit code {self._process.exitcode})"
                                ) from err
        if kind == "diverged":
            raise FloatingPointError(payload)
        if kind == "error":
            raise LearnerFailed(f"the learner process failed:\n{payload}")
        if kind != expected:
            raise LearnerFailed(f"learner protocol: expected {expected!r}, got {kind!r}")
        return payload


def _normalizer_state(ppo: PPO) -> dict[str, torch.Tensor]:
    return {**{f"actor.{k}": v.clone() for k, v in ppo.actor.normalizer.state_dict().items()},
            **{f"critic.{k}": v.clone() for k, v in ppo.critic.normalizer.state_dict().items()}}


def _learner_main(conn: Connection, cfg: PPOConfig, sizes: tuple, noise_std: torch.Tensor | None,
                  buffers: list[dict[str, torch.Tensor]], weights: dict[str, torch.Tensor],
                  normalizers: list[dict[str, torch.Tensor]], share: MinibatchShare | None, seed: int,
                  threads: int) -> None:
    """The learner process: wait for a command, run it, answer; exit when the trainer goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the trainer's to handle; it stops us
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ppo = PPO(cfg, *sizes, torch.device("cpu"), policy_noise_std=noise_std)
    ppo.behavior_lags = True
    ppo.share = share
    ppo.warm_up_update()  # while the trainer sets up and collects its first rollout
    parameters = dict(ppo.policy.named_parameters())
    while True:
        try:
            command, *args = conn.recv()
        except (EOFError, OSError):
            return  # the trainer exited or was killed
        try:
            if command == "stop":
                return
            if command == "load":
                ppo.load_state_dict(args[0])
                continue
            if command == "state":
                conn.send(("state", ppo.state_dict()))
                continue
            index = args[0]
            with torch.no_grad():
                ppo.actor.normalizer.load_state_dict(_prefixed(normalizers[index], "actor."))
                ppo.critic.normalizer.load_state_dict(_prefixed(normalizers[index], "critic."))
            ppo.storage = buffers[index]
            stats = ppo.update()
            with torch.no_grad():
                for key, tensor in weights.items():
                    tensor.copy_(parameters[key])
            conn.send(("done", stats))
        except FloatingPointError as err:
            conn.send(("diverged", str(err)))
        except Exception:  # noqa: BLE001 - everything else goes back to the trainer with its traceback
            conn.send(("error", traceback.format_exc()))


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
