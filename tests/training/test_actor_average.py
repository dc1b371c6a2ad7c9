"""The weight average that evaluations judge: the closed form of an exponential moving average, buffers included."""

from __future__ import annotations

import pytest
import torch

from robot_ac.algos.networks import DeterministicActor
from robot_ac.policy import load_bundle
from robot_ac.training.actor_average import ActorAverage


def _actor() -> DeterministicActor:
    return DeterministicActor(5, 2, [8], "tanh", action_offset=0.1)


def test_the_average_is_the_exponential_moving_average_of_every_float_tensor():
    torch.manual_seed(0)
    actor = _actor()
    average = ActorAverage(actor, decay=0.75)
    history = [{k: v.clone() for k, v in actor.state_dict().items()}]
    for _ in range(3):
        with torch.no_grad():
            for p in actor.parameters():
                p.add_(torch.randn_like(p))
            actor.normalizer.update(torch.randn(64, 5) * 3.0 + 1.0)
        average.update(actor)
        history.append({k: v.clone() for k, v in actor.state_dict().items()})
    for name, value in average.state_dict().items():
        if not value.is_floating_point():
            continue
        # a_0 = x_0; a_k = 0.75 a_(k-1) + 0.25 x_k
        expected = history[0][name]
        for state in history[1:]:
            expected = 0.75 * expected + 0.25 * state[name]
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6, msg=name)
    assert not torch.equal(average.state_dict()["net.0.weight"], actor.state_dict()["net.0.weight"])
    # the averaged actor is a separate module: training's actor is untouched and still trains
    assert all(p.requires_grad for p in actor.parameters())
    assert not any(p.requires_grad for p in average.model.parameters())


def test_a_decay_outside_zero_to_one_is_refused():
    for decay in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="decay"):
            ActorAverage(_actor(), decay)


def test_training_evaluates_checkpoints_and_ships_the_average(tmp_path, monkeypatch):
    """With ``eval_actor_average``, evaluations judge the average, the checkpoint keeps it (resume continues it)
    and the bundle of a run that did not ship its best evaluation is the average, not the last iterate."""
    import dataclasses

    from robot_ac.training import runner
    from robot_ac.training.config import load_train_config
    from robot_ac.training.policy_source import actor_from_checkpoint

    judged = []
    real_evaluate = runner.evaluate_policy

    def spy(policy, *args, **kwargs):
        judged.append(policy.__self__)
        return real_evaluate(policy, *args, **kwargs)

    monkeypatch.setattr(runner, "evaluate_policy", spy)
    cfg = load_train_config("quadrotor-hover", "ppo", max_seconds=600.0, max_env_steps=12_288, eval_episodes=8,
                            eval_every_seconds=1000.0, eval_every_env_steps=4096, compile_env=False,
                            checkpoint_every_seconds=1000.0, eval_actor_average=0.5)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, num_envs=256, steps_per_env=16,
                                                           async_update=False))
    trainer = runner.Trainer(cfg, tmp_path, show_progress=False)
    initial = trainer.adapter.actor.state_dict()["net.0.weight"].clone()
    trainer.train()
    assert judged and all(actor is trainer._average.model for actor in judged)
    summary = runner.json.loads((tmp_path / "summary.json").read_text())
    checkpoint = torch.load(tmp_path / runner.CHECKPOINT, weights_only=False)
    average = checkpoint["actor_average"]
    last = checkpoint["algo"]["policy"]["actor.net.0.weight"]
    assert not torch.equal(average["net.0.weight"], last), "the average should lag the last iterate"
    assert not torch.equal(average["net.0.weight"], initial), "the average should follow training"
    # after 12k steps every evaluation stops early (too many episodes lost), so none is a best one to ship instead
    assert summary["best_success_rate"] < 0.0 and summary["exported_actor"] == "average"
    shipped, _ = actor_from_checkpoint(tmp_path / runner.CHECKPOINT)
    assert torch.equal(shipped.state_dict()["net.0.weight"], average["net.0.weight"])
    bundle_weights = load_bundle(tmp_path / "policy.onnx")
    obs = torch.randn(4, bundle_weights.obs_size)
    torch.testing.assert_close(bundle_weights.torch_policy()(obs), shipped.act(obs), rtol=1e-5, atol=1e-5)
    resumed = runner.Trainer(None, tmp_path, resume=True, show_progress=False, read_only=True)
    assert torch.equal(resumed.evaluated_actor.state_dict()["net.0.weight"], average["net.0.weight"])
