"""Asymmetric off-policy actor-critic: TD3 (as in Learning to Fly) and SAC (automatic temperature).

The actor reads the ``policy`` group, twin critics read the ``critic`` group plus the action. Options from
Symphony (arXiv 2512.10477): a swaddled actor head with bounded ("harmless") exploration noise, and a fading
replay buffer. Hyperparameter defaults follow the Learning-to-Fly code (see ``OffPolicyConfig``).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from robot_ac.algos import regularizers
from robot_ac.algos.adam import Adam, adam_apply
from robot_ac.algos.networks import Critic, mlp
from robot_ac.algos.normalizer import RunningNormalizer
from robot_ac.algos.replay import ReplayBuffer
from robot_ac.compiler import compile_function, tensor_and_key_guards
from robot_ac.config import KeyedValueError, bounded

SIGMA_BETA_BOUNDS = (1e-3, 1.0 - 1e-3)  # Symphony clamps sigma and beta to [1e-3, 1 - 1e-3]


@dataclass(frozen=True)
class OffPolicyConfig:
    """Defaults: Learning to Fly's TD3 (batch 256, gamma 0.99, Polyak 0.995, target noise 0.2 clipped at 0.5,
    exploration 0.1, Adam 1e-3, 64-64 tanh; critics every 10 and actor every 20 environment steps)."""

    variant: str = "td3"
    num_envs: int = bounded(16, min=1)
    buffer_size: int = bounded(1_000_000, min=1)
    batch_size: int = bounded(256, min=1)
    gamma: float = bounded(0.99, min=0.0, max=1.0)
    tau: float = bounded(0.005, min=0.0, max=1.0)
    actor_lr: float = bounded(1e-3, min=0.0, exclusive_min=True)
    critic_lr: float = bounded(1e-3, min=0.0, exclusive_min=True)
    critic_updates_per_env_step: float = bounded(0.1, min=0.0, exclusive_min=True)
    actor_every: int = bounded(2, min=1, doc="actor (and target) update every k critic updates")
    warmup_critic_steps: int = bounded(15_000, min=0, doc="environment steps before critic updates")
    warmup_actor_steps: int = bounded(30_000, min=0, doc="environment steps before actor updates")
    exploration_std: float = bounded(0.1, min=0.0)
    target_noise: float = bounded(0.2, min=0.0)
    target_noise_clip: float = bounded(0.5, min=0.0)
    actor_hidden: list[int] = field(default_factory=lambda: [64, 64])
    critic_hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    sac_init_temperature: float = bounded(0.05, min=0.0, exclusive_min=True)
    swaddling: float = bounded(0.0, min=0.0, doc="weight of Symphony's swaddling loss; > 0 uses its actor head")
    harmless_noise: bool = False
    fading_replay: bool = False
    recompute_rewards: bool = True
    caps: regularizers.CapsConfig = regularizers.CapsConfig()
    compile_update: bool = bounded(False, doc="torch.compile the critic and actor losses with their gradients "
                                   "(compiled on the first update)")

    def validate(self) -> None:
        if self.variant not in ("td3", "sac"):
            raise KeyedValueError("variant", f"must be 'td3' or 'sac', got {self.variant!r}")
        if self.variant == "sac" and self.swaddling > 0:
            raise KeyedValueError("swaddling", "the swaddled actor head is a TD3 option")


def _describe(reward_fn: Callable | None) -> str:
    """What a compiled loss bakes in of the reward function: an environment's method names its configuration."""
    owner = getattr(reward_fn, "__self__", None)
    return repr((getattr(reward_fn, "__qualname__", None), getattr(owner, "_graph_key", None)))


class OffPolicyActor(nn.Module):
    """Actor with a tanh-squashed output around the nominal action ``offset``.

    ``tanh`` head (TD3): a = tanh(z0 + f(s)). ``swaddled`` head (Symphony): heads A, sigma, beta through tanh(x/2),
    sigma and beta as magnitudes, and a = tanh(z0 + sigma A + eps); swaddling penalises sigma, so action strength
    is limited without touching the actions. ``gaussian`` head (SAC): u ~ N(mu, std), a = tanh(z0 + u).
    z0 = atanh(offset) centres every head on the hover command, so deviation from hover is what gets penalised.
    """

    def __init__(self, obs_size: int, action_size: int, hidden: list[int], activation: str, head: str,
                 offset: float) -> None:
        super().__init__()
        self.head = head
        self.normalizer = RunningNormalizer(obs_size)
        self.trunk = mlp([obs_size, *hidden], activation)
        self.trunk.append(nn.Tanh() if activation == "tanh" else nn.ReLU())
        width = hidden[-1]
        self.register_buffer("z0", torch.full((action_size,), math.atanh(max(-0.99, min(0.99, offset)))))
        self.mean = nn.Linear(width, action_size)
        nn.init.orthogonal_(self.mean.weight, 0.01)
        nn.init.zeros_(self.mean.bias)
        if head == "swaddled":
            self.sigma = nn.Linear(width, action_size)
            self.beta = nn.Linear(width, action_size)
        elif head == "gaussian":
            self.log_std = nn.Linear(width, action_size)
            nn.init.zeros_(self.log_std.weight)
            nn.init.constant_(self.log_std.bias, -1.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.normalizer(obs))

    def forward(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Action in [-1, 1]; ``noise`` is added in pre-tanh space (swaddled) or to the action (tanh head)."""
        h = self.features(obs)
        extras: dict[str, torch.Tensor] = {}
        if self.head == "swaddled":
            a_dir = torch.tanh(self.mean(h) / 2)
            sigma = torch.tanh(self.sigma(h) / 2).abs().clamp(*SIGMA_BETA_BOUNDS)
            beta = torch.tanh(self.beta(h) / 2).abs().clamp(*SIGMA_BETA_BOUNDS)
            z = self.z0 + sigma * a_dir
            if noise is not None:
                z = z + noise
            extras = {"sigma": sigma, "beta": beta}
            return torch.tanh(z), extras
        if self.head == "gaussian":
            mu = self.mean(h)
            if noise is None:
                return torch.tanh(self.z0 + mu), extras
            std = self.log_std(h).clamp(-5.0, 1.0).exp()
            u = mu + std * noise
            action = torch.tanh(self.z0 + u)
            log_prob = (torch.distributions.Normal(mu, std).log_prob(u)
                        - torch.log(1 - action.pow(2) + 1e-6)).sum(-1)
            extras["log_prob"] = log_prob
            return action, extras
        action = torch.tanh(self.z0 + self.mean(h))
        if noise is not None:
            action = (action + noise).clamp(-1.0, 1.0)
        return action, extras

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic deployment action."""
        return self.forward(obs)[0]


class OffPolicy:
    """TD3 / SAC learner with twin critics, replay and optional Symphony options."""

    def __init__(self, cfg: OffPolicyConfig, policy_obs: int, critic_obs: int, action_size: int,
                 action_offset: float, device: torch.device, reward_fn=None, reward_terms: int = 1,
                 policy_noise_std: torch.Tensor | None = None, seed: int = 0) -> None:
        self.cfg = cfg
        self.device = device
        self.action_size = action_size
        head = "gaussian" if cfg.variant == "sac" else ("swaddled" if cfg.swaddling > 0 else "tanh")
        self.actor = OffPolicyActor(policy_obs, action_size, cfg.actor_hidden, cfg.activation, head,
                                    action_offset).to(device)
        self.critics = nn.ModuleList([Critic(critic_obs, cfg.critic_hidden, cfg.activation, action_size)
                                      for _ in range(2)]).to(device)
        self.critics[1].normalizer = self.critics[0].normalizer  # one set of statistics
        self.actor_target = copy.deepcopy(self.actor)
        self.critics_target = copy.deepcopy(self.critics)
        for p in [*self.actor_target.parameters(), *self.critics_target.parameters()]:
            p.requires_grad_(False)
        self.actor_opt = Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = Adam(self.critics.parameters(), lr=cfg.critic_lr)
        self.log_alpha = torch.tensor(math.log(cfg.sac_init_temperature), device=device, requires_grad=True)
        self.alpha_opt = Adam([self.log_alpha], lr=cfg.actor_lr)
        # The update is functional (torch.func) on plain tensors that alias the modules' parameters and buffers, and
        # writes them in place; the modules stay what acting, checkpoints and export read.
        self._actor_names = [n for n, _ in self.actor.named_parameters()]
        self._critic_names = [n for n, _ in self.critics[0].named_parameters()]
        self._actor_weights = [p.detach() for p in self.actor.parameters()]
        self._critic_weights = [p.detach() for p in self.critics.parameters()]  # critic 0's, then critic 1's
        self._log_alpha_weight = self.log_alpha.detach()
        self._target_weights = [p.detach() for p in (*self.actor_target.parameters(),
                                                     *self.critics_target.parameters())]
        self._online_buffers = [*self.actor.buffers(), *self.critics.buffers()]
        self._target_buffers = [*self.actor_target.buffers(), *self.critics_target.buffers()]
        self.target_entropy = -float(action_size)
        self.reward_fn = reward_fn
        self.policy_noise_std = policy_noise_std.to(device) if policy_noise_std is not None else None
        # CAPS's spatial perturbation sigma_s per policy column (None: the term is off)
        self._spatial_sigma = (self.policy_noise_std * cfg.caps.spatial_sigma_scale
                               if cfg.caps.spatial > 0 and self.policy_noise_std is not None else None)
        # What the compiled losses bake in; they are guarded on it and on tensors only (dynamo's default guards on
        # every module and config attribute took 160 us per call).
        self._graph_key = hashlib.sha256(repr((cfg, policy_obs, critic_obs, action_size, action_offset,
                                               _describe(reward_fn))).encode()).hexdigest()
        if cfg.compile_update:
            # Each step (loss, gradient, Adam, target update) as one compiled graph: a TD3 critic update took
            # 3.2 ms eager here, most of it per-op overhead on [256, 64] tensors.
            options = {"guard_filter_fn": tensor_and_key_guards}
            self._critic_step = compile_function(self._critic_step, dynamic=False, options=options)
            self._actor_step = compile_function(self._actor_step, dynamic=False, options=options)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.buffer = ReplayBuffer(
            cfg.buffer_size,
            {"policy_obs": (policy_obs,), "critic_obs": (critic_obs,), "action": (action_size,),
             "reward": (), "reward_terms": (reward_terms,), "terminated": (), "next_policy_obs": (policy_obs,),
             "next_critic_obs": (critic_obs,), "episode_continues": ()},
            device, dtypes={"terminated": torch.bool, "episode_continues": torch.bool}, fading=cfg.fading_replay)
        self.env_steps = 0
        self.critic_updates = 0
        self._update_debt = 0.0

    def _noise(self, shape: tuple[int, ...], std: float) -> torch.Tensor:
        if self.cfg.harmless_noise or self.actor.head == "swaddled":
            return regularizers.harmless_noise(shape, self.generator, self.device) * (std / 0.5)
        return torch.randn(shape, generator=self.generator, device=self.device) * std

    @torch.no_grad()
    def act(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Exploration action: the actor plus Gaussian (or Symphony's bounded) noise; SAC samples its policy."""
        self.actor.normalizer.update(obs["policy"])
        self.critics[0].normalizer.update(obs["critic"])
        n = obs["policy"].shape[0]
        if self.cfg.variant == "sac":
            noise = torch.randn((n, self.action_size), generator=self.generator, device=self.device)
            return self.actor(obs["policy"], noise)[0]
        return self.actor(obs["policy"], self._noise((n, self.action_size), self.cfg.exploration_std))[0]

    def record(self, obs: dict[str, torch.Tensor], action: torch.Tensor, reward: torch.Tensor,
               reward_terms: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
               next_obs: dict[str, torch.Tensor]) -> None:
        """Store transitions; ``next_obs`` is the state each environment reached (``StepResult.next_observations``),
        not the observation after an automatic reset."""
        self.buffer.add(policy_obs=obs["policy"], critic_obs=obs["critic"], action=action, reward=reward,
                        reward_terms=reward_terms, terminated=terminated, next_policy_obs=next_obs["policy"],
                        next_critic_obs=next_obs["critic"], episode_continues=~(terminated | truncated))
        self.env_steps += action.shape[0]

    def maybe_update(self, reward_weights: torch.Tensor | None = None) -> dict[str, float]:
        """Run the updates owed for the environment steps recorded so far."""
        cfg = self.cfg
        if self.env_steps < cfg.warmup_critic_steps:
            return {}
        self._update_debt += cfg.critic_updates_per_env_step * self._steps_since_last()
        stats: dict[str, float] = {}
        while self._update_debt >= 1.0:
            self._update_debt -= 1.0
            stats = self.update(reward_weights, update_actor=self.env_steps >= cfg.warmup_actor_steps
                                and self.critic_updates % cfg.actor_every == 0)
        return stats

    def _steps_since_last(self) -> int:
        last = getattr(self, "_last_env_steps", self.env_steps)
        self._last_env_steps = self.env_steps
        return self.env_steps - last if last <= self.env_steps else 0

    def update(self, reward_weights: torch.Tensor | None, update_actor: bool) -> dict[str, float]:
        cfg = self.cfg
        rows = self.buffer.sample_rows(cfg.batch_size, self.generator)
        weights = reward_weights if cfg.recompute_rewards and self.reward_fn is not None else None
        # Random numbers are drawn here, outside the (compiled) steps: the stream stays the generator's.
        next_noise = torch.randn((cfg.batch_size, self.action_size), generator=self.generator, device=self.device)
        critic_loss, q_mean = self._critic_step(rows, weights, next_noise, *self._adam_scalars(self.critic_opt))
        self._check_finite("critic", critic_loss)
        self.critic_updates += 1
        stats = {"critic_loss": float(critic_loss), "q_mean": float(q_mean)}
        if update_actor:
            stats |= self._update_actor(rows)
        return stats

    def _adam_scalars(self, optimizer: Adam) -> tuple[torch.Tensor, torch.Tensor]:
        """The optimizer's next step size and second-moment scale, as tensors for a compiled step."""
        step_size, scale = optimizer.advance()
        return (torch.tensor(step_size, device=self.device), torch.tensor(scale, device=self.device))

    def _critic_step(self, rows: torch.Tensor, reward_weights: torch.Tensor | None, next_noise: torch.Tensor,
                     step_size: torch.Tensor, denominator_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One twin-critic TD update on packed replay rows, in place; returns (loss, mean Q). ``next_noise`` is
        standard normal ``[B, A]``: target-policy smoothing (TD3) or the next action's sample (SAC)."""
        if not self._graph_key:  # read so that a compiled step is guarded on this learner's configuration
            raise RuntimeError("learner without a configuration key")
        cfg = self.cfg
        batch = self.buffer.unpack(rows)
        reward = batch["reward"]
        if reward_weights is not None:
            reward = self.reward_fn(batch["reward_terms"], batch["terminated"], reward_weights)
        not_done = (~batch["terminated"]).float()
        with torch.no_grad():
            next_obs = batch["next_policy_obs"]
            if cfg.variant == "sac":
                next_action, extras = self.actor(next_obs, next_noise)
                entropy_bonus = -self.log_alpha.exp() * extras["log_prob"]
            else:
                next_action = self.actor_target(next_obs)[0]
                smoothing = (next_noise * cfg.target_noise).clamp(-cfg.target_noise_clip, cfg.target_noise_clip)
                next_action = (next_action + smoothing).clamp(-1.0, 1.0)
                entropy_bonus = 0.0
            q_next = torch.min(*(c(batch["next_critic_obs"], next_action) for c in self.critics_target))
            target = reward + cfg.gamma * not_done * (q_next + entropy_bonus)

        def loss(weights: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            q1, q2 = (self._critic(i, weights, batch["critic_obs"], batch["action"]) for i in range(2))
            return ((q1 - target) ** 2).mean() + ((q2 - target) ** 2).mean(), q1.detach().mean()

        grads, (critic_loss, q_mean) = grad_and_value(loss, has_aux=True)(self._critic_weights)
        opt = self.critic_opt
        with torch.no_grad():
            adam_apply(self._critic_weights, grads, opt.exp_avg, opt.exp_avg_sq, step_size, denominator_scale,
                       opt.betas, opt.eps, only_if=torch.isfinite(critic_loss))
        return critic_loss.detach(), q_mean

    def _critic(self, index: int, weights: list[torch.Tensor], obs: torch.Tensor, action: torch.Tensor
                ) -> torch.Tensor:
        """Critic ``index`` evaluated with ``weights`` (both critics' parameters, critic 0's first)."""
        k = len(self._critic_names)
        return functional_call(self.critics[index], dict(zip(self._critic_names, weights[index * k:(index + 1) * k],
                                                             strict=True)), (obs, action))

    def _update_actor(self, rows: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        n, a = cfg.batch_size, self.action_size
        policy_noise = (torch.randn((n, a), generator=self.generator, device=self.device)
                        if cfg.variant == "sac" else None)
        spatial_noise = (torch.randn((n, self._spatial_sigma.numel()), generator=self.generator, device=self.device)
                         if self._spatial_sigma is not None else None)
        alpha_scalars = self._adam_scalars(self.alpha_opt) if cfg.variant == "sac" else (None, None)
        losses = self._actor_step(rows, policy_noise, spatial_noise, *self._adam_scalars(self.actor_opt),
                                  *alpha_scalars)
        self._check_finite("actor", losses.pop("loss"))
        return {k: float(v) for k, v in losses.items()}

    def _actor_step(self, rows: torch.Tensor, policy_noise: torch.Tensor | None, spatial_noise: torch.Tensor | None,
                    step_size: torch.Tensor, denominator_scale: torch.Tensor, alpha_step_size: torch.Tensor | None,
                    alpha_denominator_scale: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One actor update (and SAC's temperature) with the regularizers, then the Polyak target update, in place.
        The critics only score the actor's actions: their weights are constants here. Noises are standard normal."""
        if not self._graph_key:
            raise RuntimeError("learner without a configuration key")
        cfg = self.cfg
        batch = self.buffer.unpack(rows)
        obs = batch["policy_obs"]
        critic_weights = [w.detach() for w in self._critic_weights]

        def loss(weights: list[torch.Tensor], log_alpha: torch.Tensor) -> tuple[torch.Tensor, dict]:
            params = dict(zip(self._actor_names, weights, strict=True))

            def actor(x: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
                return functional_call(self.actor, params, (x, noise))

            out: dict[str, torch.Tensor] = {}
            if cfg.variant == "sac":
                action, extras = actor(obs, policy_noise)
                q = torch.min(*(self._critic(i, critic_weights, batch["critic_obs"], action) for i in range(2)))
                alpha = log_alpha.exp().detach()
                total = (alpha * extras["log_prob"] - q).mean()
                alpha_loss = -(log_alpha * (extras["log_prob"].detach() + self.target_entropy)).mean()
                out["alpha"] = alpha
            else:
                action, extras = actor(obs)
                total = -self._critic(0, critic_weights, batch["critic_obs"], action).mean()
                alpha_loss = 0.0 * log_alpha
            out["actor_q_loss"] = total.detach()
            if cfg.swaddling > 0:
                swaddle = regularizers.swaddling_loss(extras["sigma"], extras["beta"])
                total = total + cfg.swaddling * swaddle
                out["swaddling"] = swaddle.detach()
                out["sigma"] = extras["sigma"].detach().mean()
            deterministic = action if cfg.variant == "td3" and cfg.swaddling == 0 else actor(obs)[0]
            if cfg.caps.temporal > 0:
                temporal = regularizers.caps_temporal(deterministic, actor(batch["next_policy_obs"])[0],
                                                      batch["episode_continues"])
                total = total + cfg.caps.temporal * temporal
                out["caps_temporal"] = temporal.detach()
            if spatial_noise is not None:
                spatial = regularizers.caps_spatial(deterministic, actor(obs + spatial_noise * self._spatial_sigma)[0])
                total = total + cfg.caps.spatial * spatial
                out["caps_spatial"] = spatial.detach()
            out["loss"] = total.detach()
            # The two losses share no parameters (alpha is detached in one, log-probabilities in the other).
            return total + alpha_loss, out

        (grads, alpha_grad), (_, out) = grad_and_value(loss, argnums=(0, 1), has_aux=True)(
            self._actor_weights, self._log_alpha_weight)
        finite = torch.isfinite(out["loss"])
        with torch.no_grad():
            opt = self.actor_opt
            adam_apply(self._actor_weights, grads, opt.exp_avg, opt.exp_avg_sq, step_size, denominator_scale,
                       opt.betas, opt.eps, only_if=finite)
            if cfg.variant == "sac":
                opt = self.alpha_opt
                adam_apply([self._log_alpha_weight], [alpha_grad], opt.exp_avg, opt.exp_avg_sq, alpha_step_size,
                           alpha_denominator_scale, opt.betas, opt.eps, only_if=finite)
            # Polyak averaging of the targets (TD3: every actor update); normalizer statistics are copied.
            torch._foreach_lerp_(self._target_weights, [*self._actor_weights, *self._critic_weights], cfg.tau)
            torch._foreach_copy_(self._target_buffers, self._online_buffers)
        return out

    @staticmethod
    def _check_finite(name: str, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite {name} loss ({float(loss)})")

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critics": self.critics.state_dict(),
                "actor_target": self.actor_target.state_dict(), "critics_target": self.critics_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "log_alpha": self.log_alpha.detach().clone(), "alpha_opt": self.alpha_opt.state_dict(),
                "env_steps": self.env_steps, "critic_updates": self.critic_updates}

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critics.load_state_dict(state["critics"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.env_steps, self.critic_updates = state["env_steps"], state["critic_updates"]
        self._last_env_steps = self.env_steps
