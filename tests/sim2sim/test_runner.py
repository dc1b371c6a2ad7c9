"""The batched reference run flies exactly what the one-robot training backend flies, episode by episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_ac.policy import load_bundle
from robot_ac.sim.task_config import load_task
from robot_ac.sim2sim.backend import BackendOptions, create_backend
from robot_ac.sim2sim.controller import make_controller
from robot_ac.sim2sim.effects import EffectSettings
from robot_ac.sim2sim.runner import fly_episode, fly_training_batch, sample_start_states


def test_batched_reference_matches_one_robot_backend(lqr_bundle: Path, untrained_bundle: Path) -> None:
    task = load_task("quadrotor-hover")
    options = BackendOptions("crazyflie", task, EffectSettings())
    starts = sample_start_states(task, "crazyflie", 4, seed=3)
    target = np.zeros(3)
    for path in (lqr_bundle, untrained_bundle):  # one that holds and one that falls out of bounds
        bundle = load_bundle(path)
        batch = fly_training_batch(options, bundle, starts, 150, target)
        single = create_backend("training", options)
        controller = make_controller(bundle)
        for start, batched in zip(starts, batch.episodes, strict=True):
            one = fly_episode(single, controller, start, 150, task.termination.position_limit, target)
            assert one.end_reason == batched.end_reason
            assert len(one.positions) == len(batched.positions)
            np.testing.assert_allclose(one.positions, batched.positions, atol=1e-5)
            np.testing.assert_allclose(one.actions, batched.actions, atol=1e-5)
            np.testing.assert_allclose(one.times, batched.times, atol=1e-9)
        reasons = {ep.end_reason for ep in batch.episodes}
        assert reasons == ({None} if path == lqr_bundle else {"out of bounds"}), reasons
