"""Turn a bundle, run folder or checkpoint into a batched policy callable."""

from __future__ import annotations

from pathlib import Path

import torch

from robot_ac.policy.bundle import BundleError, load_bundle

PolicyAndTask = tuple  # (callable obs -> action, task id)


def load_policy(path: Path) -> PolicyAndTask:
    if path.is_dir():
        path = path / "checkpoint.pt"
    if path.suffix == ".onnx":
        bundle = load_bundle(path)
        return bundle.torch_policy(), bundle.contract["task"]
    if path.suffix == ".pt":
        actor, cfg = actor_from_checkpoint(path)
        return (lambda obs: actor.act(obs)), cfg.task
    raise BundleError(f"{path}: expected a .onnx bundle, a run folder or a checkpoint.pt")


def actor_from_checkpoint(path: Path):
    """Rebuild the actor a run shipped from its checkpoint (no environment needed beyond sizes): the last one (its
    weight average when the run kept one), or the best-evaluation one when the run exported that, so eval and
    re-export see the run's own bundle."""
    from robot_ac.training.runner import Trainer, shipped_best_actor

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    trainer = Trainer(None, path.parent, resume=True, show_progress=False, read_only=True)
    actor = trainer.evaluated_actor.eval()
    best = shipped_best_actor(path.parent)
    if best is not None:
        actor.load_state_dict(torch.load(best, weights_only=True))
    with torch.no_grad():
        return actor, trainer.cfg
