"""Training configuration: ``sim/agents/<task>_<algo>.yaml``, overridden by command-line flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from robot_ac.algos.offpolicy import OffPolicyConfig
from robot_ac.algos.ppo import PPOConfig
from robot_ac.config import KeyedValueError, bounded, load_yaml_config
from robot_ac.paths import sim_dir
from robot_ac.training import ALGORITHMS


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every field can be set in the agent YAML; the CLI overrides the common ones."""

    task: str = "quadrotor-hover"
    train_task: str = bounded("", doc="task file for the training environment only (e.g. a wider start "
                                      "distribution); its observation contract must equal the task's. Evaluation, "
                                      "the success criterion and the exported contract always use `task`")
    train_start: dict = bounded(default_factory=dict, doc="start-state ranges of the training environment only, "
                                "over the task's `start` (e.g. {attitude_deg: 110}); evaluation and the criterion "
                                "keep the task's")
    robot: str = bounded("", doc="robot file (sim/robots/<name>.yaml or a path); empty uses the task's robot")
    algo: str = "ppo"
    seed: int = 0
    device: str = "cpu"
    max_seconds: float = bounded(600.0, min=0.0, exclusive_min=True, doc="wall-clock budget")
    max_env_steps: int = bounded(0, min=0, doc="0 means no limit")
    until_success: bool = False
    eval_episodes: int = bounded(1000, min=1)
    eval_every_seconds: float = bounded(10.0, min=0.0, doc="training time between success evaluations")
    eval_every_env_steps: int = bounded(0, min=0, doc="also evaluate once this many environment steps have passed "
                                        "since the last evaluation (0: time alone). Where steps come fast (a GPU), "
                                        "a policy can pass its best between two timed evaluations")
    eval_in_background: bool = bounded(True, doc="with a learner process (ppo.async_update), run evaluations on a "
                                       "copy of the actor in the time the trainer waits for the learner")
    background_eval_every_seconds: float = bounded(0.0, min=0.0, doc="time between the starts of background "
                                                   "evaluations (0: back to back)")
    eval_actor_average: float = bounded(0.0, min=0.0, max=0.999, doc="decay per training iteration of an "
                                        "exponential moving average of the actor's weights; evaluations, the "
                                        "success criterion and the export use that average (0: the current actor)")
    checkpoint_every_seconds: float = bounded(20.0, min=0.0)
    curriculum_every_steps: int = bounded(0, min=0, doc="0 keeps the task's value")
    threads: int = bounded(0, min=0, doc="torch threads; 0 uses all cores")
    compile_env: bool = bounded(False, doc="torch.compile the training and evaluation simulators; off, the "
                                "learners' compile_update and PPO's share_minibatches are off too (eager throughout)")
    replay_failed_starts: float = bounded(0.0, min=0.0, max=0.9, doc="fraction of new training episodes that "
                                          "restart from the start of an episode that terminated (0 = off)")
    train_nominal_fraction: float = bounded(0.0, min=0.0, max=1.0, doc="fraction of training episodes on the "
                                            "nominal robot's physical parameters (delay and disturbance still "
                                            "drawn); evaluation and the criterion keep the randomized population")
    ppo: PPOConfig = PPOConfig()
    offpolicy: OffPolicyConfig = OffPolicyConfig()

    def validate(self) -> None:
        if self.algo not in ALGORITHMS:
            raise KeyedValueError("algo", f"must be one of {ALGORITHMS}, got {self.algo!r}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise KeyedValueError("device", f"must be 'cpu' or 'cuda[:N]', got {self.device!r}")

    @property
    def num_envs(self) -> int:
        return self.ppo.num_envs if self.algo == "ppo" else self.offpolicy.num_envs


def agent_file(task: str, algo: str) -> Path:
    return sim_dir() / "agents" / f"{task.replace('-', '_')}_{algo}.yaml"


def load_train_config(task: str, algo: str, path: str | Path | None = None, **overrides) -> TrainConfig:
    """The agent file for (task, algo), or ``path``, with ``overrides`` (None values ignored) applied."""
    source = Path(path) if path else agent_file(task, algo)
    cfg = load_yaml_config(TrainConfig, source) if source.is_file() else TrainConfig(task=task, algo=algo)
    if cfg.algo != algo and path is None:
        raise KeyedValueError("algo", f"{source} is for '{cfg.algo}', asked for '{algo}'")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "num_envs" in changes:
        n = changes.pop("num_envs")
        if cfg.algo == "ppo":
            changes["ppo"] = dataclasses.replace(cfg.ppo, num_envs=n)
        else:
            changes["offpolicy"] = dataclasses.replace(cfg.offpolicy, num_envs=n)
    cfg = dataclasses.replace(cfg, **changes)
    cfg.validate()
    return cfg
