"""Hardware-in-the-loop: the simulator on the host, the policy on a device, STATE/ACTION over a serial link.

Each cycle the host sends the policy observation as a STATE frame at an absolute deadline (``t0 + k * period``,
so scheduling jitter does not accumulate), waits for the matching ACTION until the next deadline, and steps the
simulator with the device's command. A cycle without an answer by then is *missed*: the actuators keep the last
command, as a real motor driver would. The run stops cleanly, with a report rather than a traceback, when the
device sends a FAULT, stops answering for ``link_timeout_s`` (the device's own watchdog is 200 ms) or its port
disappears. Success is scored as in simulation (``robot_ac.training.evaluate``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from robot_ac.hardware import hil_report as R
from robot_ac.hardware.hil_report import EpisodeResult, HilReport
from robot_ac.hardware.protocol import Action, Config, Fault, FaultCode, Heartbeat, Message, State
from robot_ac.hardware.serial_link import LinkError, SerialLink

# FAULTs that do not end a run: a corrupted frame (the device resynchronises; that cycle is missed) and an
# overrun (the action was still sent, only late by the device's own clock).
TOLERATED_FAULTS = {FaultCode.BAD_FRAME, FaultCode.OVERRUN}


class HilError(RuntimeError):
    """The run could not start (bundle and simulator disagree, device does not answer or arm)."""


@dataclass
class HilConfig:
    episodes: int = 1
    episode_s: float = 5.0  # the success criterion's episode length
    rate_hz: float | None = None  # STATE frames per second; None = the policy's control rate (real time)
    link_timeout_s: float = 0.2  # no ACTION for this long ends the run (matches the device watchdog)
    handshake_timeout_s: float = 3.0
    settle_window_s: float = 1.0  # success: mean position error over the episode's last second
    seed: int = 0
    compare_onnx: bool = True  # run onnxruntime on every STATE and compare with the device's action
    atol: float = 1e-5
    compile_sim: bool = False  # torch.compile the simulator step (fast enough for 500 Hz; ~20 s start-up)
    # Lockstep: no wall-clock pacing; each STATE waits up to reply_timeout_s for its ACTION. Same frames, same
    # firmware, but the result does not depend on how busy the host is (functional checks on a shared machine).
    realtime: bool = True
    duration_s: float | None = None  # run episodes back to back for this long instead (benchmarks); a cut-off
    #                                  episode is not scored
    reply_timeout_s: float = 0.25  # lockstep only; in real time the reply window is one period
    target: str = "device"


@dataclass
class FaultInjection:
    """Host-side faults for tests: drop or corrupt outgoing STATE frames, or stop the host mid-run."""

    drop_rate: float = 0.0
    corrupt_rate: float = 0.0
    stop_host_at_cycle: int | None = None
    seed: int = 0
    drops: int = 0
    corruptions: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def mutate(self, wire: bytes) -> bytes | None:
        """Wire bytes to send instead: ``None`` drops the frame, else one byte flipped inside the frame."""
        draw = self._rng.random()
        if draw < self.drop_rate:
            self.drops += 1
            return None
        if draw < self.drop_rate + self.corrupt_rate:
            self.corruptions += 1
            data = bytearray(wire)
            pos = int(self._rng.integers(1, len(data) - 1))  # keep the delimiters so only this frame is hit
            data[pos] ^= int(self._rng.integers(1, 256))
            return bytes(data)
        return wire


@dataclass
class CycleRecord:
    """One control cycle, handed to every callback (flight log, fault-injection triggers, live plots)."""

    episode: int
    step: int
    cycle: int
    time_s: float  # since the run started
    observation: np.ndarray
    action: np.ndarray | None  # the device's action; None when the cycle was missed
    applied: np.ndarray  # what the simulator got (held previous command on a miss)
    onnx_action: np.ndarray | None
    latency_s: float | None
    position_error_m: float
    terminated: bool


CycleCallback = Callable[[CycleRecord], None]
MessageSink = Callable[[Message], None]


class _Stop(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def make_env(contract: dict, config: HilConfig):
    """One simulated robot for the bundle's task and robot, randomized and noisy like evaluation."""
    from robot_ac.sim.quadrotor.env import QuadrotorEnv

    env = QuadrotorEnv(contract["task"], num_envs=1, seed=config.seed, robot=contract.get("robot"),
                       domain_randomization=True, observation_noise=True, curriculum=False,
                       compile=config.compile_sim)
    _check_contract(contract, env.contract.to_dict())
    return env


def _check_contract(bundle: dict, sim: dict) -> None:
    def layout(c: dict, section: str) -> list[tuple[str, int]]:
        return [(f["name"], int(f["size"])) for f in c[section]["fields"]]

    for section in ("observation", "action"):
        if layout(bundle, section) != layout(sim, section):
            raise HilError(f"the bundle's {section} layout {layout(bundle, section)} differs from the simulator's "
                           f"{layout(sim, section)} for task {sim['task']!r}, robot {sim['robot']!r}")


def handshake(link: SerialLink, timeout_s: float, seen: MessageSink | None = None) -> Heartbeat:
    """Ping until the device answers, then drop answers to earlier pings queued before it listened."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        link.send(Heartbeat(time_us=_now_us()))
        reply = _wait_for(link, Heartbeat, min(0.5, max(0.0, deadline - time.monotonic())), seen)
        if reply is not None:
            while (late := link.receive(0.05)) is not None:
                if seen is not None:
                    seen(late)
            return reply
    raise HilError(f"device on {link.port} did not answer HEARTBEAT within {timeout_s:g} s: is the firmware running "
                   "and the port right?")


def set_armed(link: SerialLink, arm: bool, rate_hz: int, timeout_s: float = 0.5,
              seen: MessageSink | None = None) -> None:
    """Send CONFIG and wait for the HEARTBEAT that shows the new armed flag."""
    link.send(Config(arm, rate_hz))
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        reply = _wait_for(link, Heartbeat, left, seen)
        if reply is not None and reply.armed == arm:
            return
    raise HilError(f"device on {link.port} did not acknowledge {'arming' if arm else 'disarming'} within "
                   f"{timeout_s:g} s")


def _wait_for(link: SerialLink, kind: type, timeout_s: float, seen: MessageSink | None = None) -> Message | None:
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        msg = link.receive(left)
        if msg is not None and seen is not None:
            seen(msg)
        if isinstance(msg, kind):
            return msg
    return None


def _now_us() -> int:
    return int(time.monotonic() * 1e6) & 0xFFFFFFFF


class HilRun:
    """One run: owns the simulator, the onnxruntime reference and the report; the link is the caller's."""

    def __init__(self, bundle, link: SerialLink, config: HilConfig, inject: FaultInjection | None = None,
                 callbacks: Sequence[CycleCallback] = ()) -> None:
        self.bundle, self.link, self.config, self.inject = bundle, link, config, inject
        self.callbacks = list(callbacks)
        contract = bundle.contract
        self.control_rate = float(contract["control_rate_hz"])
        self.rate = float(config.rate_hz or self.control_rate)
        self.period = 1.0 / self.rate
        self.env = make_env(contract, config)
        self.session = bundle.session(threads=1) if config.compare_onnx else None
        self.initial_action = np.asarray(contract.get("initial_action", self.env.hover_action), np.float32)
        self.initial_action = np.broadcast_to(self.initial_action, (bundle.action_size,)).copy()
        self.report = HilReport(
            status=R.COMPLETED, reason="all episodes ran", port=link.port, target=config.target,
            mode="realtime" if config.realtime else "lockstep", rate_hz=self.rate if config.realtime else 0.0,
            control_rate_hz=self.control_rate, episodes_requested=config.episodes, episode_s=config.episode_s,
            action_atol=config.atol)
        # Time spent waiting for ACTIONs since the last one came: a host that was itself descheduled between
        # cycles (this machine is shared) must not blame the device for its own stall.
        self._waited = 0.0
        self._in_exchange = False
        self._max_diff: float | None = None  # stays None until an answered STATE has been compared
        self._t_start = 0.0

    # --- top level
    def run(self) -> HilReport:
        torch.set_num_threads(1)  # one small robot: threads only add scheduling jitter
        rep = self.report
        self._t_start = time.perf_counter()
        disarm = True
        try:
            self._warm_up()
            handshake(self.link, self.config.handshake_timeout_s, self._seen)
            self._t_start = time.perf_counter()  # the run's clock starts after warm-up (and compilation)
            obs = self.env.reset(seed=self.config.seed)["policy"][0].numpy()
            episode = 0
            while self._more_episodes(episode):
                result = self._episode(episode, obs)
                if result is not None:
                    rep.episodes.append(result)
                obs = self.env.reset()["policy"][0].numpy()
                episode += 1
            if self.config.duration_s is not None:
                rep.reason = f"ran {self.config.duration_s:g} s ({len(rep.episodes)} whole episodes)"
                rep.episodes_requested = len(rep.episodes)
        except _Stop as stop:
            rep.status, rep.reason = stop.status, stop.reason
            disarm = stop.status not in (R.HOST_STOPPED, R.PORT_VANISHED)
        except KeyboardInterrupt:
            rep.status, rep.reason = R.INTERRUPTED, "interrupted by the user (Ctrl-C)"
        finally:
            rep.wall_s = time.perf_counter() - self._t_start
        if disarm:
            self._disarm_quietly()
        for msg in self.link.drain():
            self._seen(msg)
        rep.action_max_abs_diff = self._max_diff
        rep.injected_drops = self.inject.drops if self.inject else 0
        rep.injected_corruptions = self.inject.corruptions if self.inject else 0
        rep.link = vars(self.link.counters).copy()
        return rep

    def _more_episodes(self, episode: int) -> bool:
        if self.config.duration_s is None:
            return episode < self.config.episodes
        return not self._out_of_time()

    def _out_of_time(self) -> bool:
        return self.config.duration_s is not None and time.perf_counter() - self._t_start >= self.config.duration_s

    def _disarm_quietly(self) -> None:
        # Best effort: a device that is gone or faulted is disarmed already or cannot be reached.
        with contextlib.suppress(HilError, LinkError):
            set_armed(self.link, False, 0, timeout_s=0.3, seen=self._seen)

    # --- one episode
    def _episode(self, episode: int, obs: np.ndarray) -> EpisodeResult | None:
        cfg, rep = self.config, self.report
        steps = max(1, round(cfg.episode_s * self.control_rate))
        window = max(1, round(cfg.settle_window_s * self.control_rate))
        try:  # disarm + arm: the device calls policy_reset(), so recurrent policies start fresh
            # QEMU on a busy host can take far longer than a real board to answer: allow the link timeout.
            wait = max(0.5, cfg.link_timeout_s)
            set_armed(self.link, False, 0, timeout_s=wait, seen=self._seen)
            set_armed(self.link, True, int(round(self.rate)), timeout_s=wait, seen=self._seen)
        except HilError as err:
            raise _Stop(R.DEVICE_TIMEOUT, str(err)) from err
        except LinkError as err:
            raise self._link_lost(err) from err
        held = self.initial_action.copy()
        error_sum, alive, step, k = 0.0, True, 0, 0
        t0 = time.perf_counter()
        self._waited = 0.0
        while step < steps:
            if self._out_of_time():
                return None
            deadline = t0 + k * self.period
            now = time.perf_counter()
            if not cfg.realtime:
                deadline, cycle_end = now, now + cfg.reply_timeout_s
            else:
                if now < deadline:
                    _sleep_until(deadline)
                elif now >= deadline + self.period:  # the host fell behind by whole periods: skip them, no burst
                    skipped = int((now - deadline) / self.period)
                    rep.host_overruns += skipped
                    rep.missed_cycles += skipped
                    k += skipped
                    deadline = t0 + k * self.period
                cycle_end = deadline + self.period
            action, latency = self._exchange(obs, deadline, cycle_end, k)
            onnx = self._reference(obs) if action is not None else None
            if onnx is not None:  # the device answered exactly this observation: compare before clamping
                diff = float(np.max(np.abs(action - onnx)))
                self._max_diff = diff if self._max_diff is None else max(self._max_diff, diff)
                rep.actions_compared += 1
            applied = held if action is None else self._checked(action)
            held = applied
            result = self.env.step(torch.from_numpy(applied)[None])
            err_m = float(result.info["position_error"][0])
            terminated = bool(result.terminated[0])
            if step >= steps - window:
                error_sum += err_m
            record = CycleRecord(episode, step, rep.cycles - 1, time.perf_counter() - self._t_start, obs, action,
                                 applied, onnx, latency, err_m, terminated)
            for callback in self.callbacks:
                callback(record)
            obs = result.observations["policy"][0].numpy()
            step, k = step + 1, k + 1
            if terminated:
                alive = False
                break
        settle = error_sum / window if alive else math.inf
        from robot_ac.training.evaluate import SETTLE_THRESHOLD_M

        return EpisodeResult(alive, settle, step, alive and settle < SETTLE_THRESHOLD_M)

    # --- one exchange
    def _exchange(self, obs: np.ndarray, deadline: float, cycle_end: float, k: int
                  ) -> tuple[np.ndarray | None, float | None]:
        rep, inject = self.report, self.inject
        if inject is not None and inject.stop_host_at_cycle is not None and rep.cycles >= inject.stop_host_at_cycle:
            raise _Stop(R.HOST_STOPPED, f"host stopped sending after {rep.cycles} cycles (fault injection)")
        rep.cycles += 1
        state = State(obs.astype(np.float32, copy=False).tolist())
        t_send = time.perf_counter()
        rep.send_lag_s.append(t_send - deadline)
        try:
            seq = self.link.send(state, mutate=inject.mutate if inject else None)
        except LinkError as err:
            raise self._link_lost(err) from err
        self._in_exchange = True
        try:
            return self._await_action(seq, t_send, cycle_end)
        finally:
            self._in_exchange = False

    def _await_action(self, seq: int, t_send: float, cycle_end: float) -> tuple[np.ndarray | None, float | None]:
        rep = self.report
        while (left := cycle_end - time.perf_counter()) > 0:
            msg = self.link.receive(left)
            if msg is None:
                break
            self._seen(msg)
            if isinstance(msg, Fault):
                self._on_fault(msg)
            elif isinstance(msg, Action):
                if msg.state_seq != seq:
                    rep.late_replies += 1
                    continue
                t_reply = time.perf_counter()
                rep.answered += 1
                rep.latencies_s.append(t_reply - t_send)
                rep.compute_us.append(msg.compute_us)
                self._waited = 0.0
                return self._device_action(msg), t_reply - t_send
        rep.missed_cycles += 1
        self._waited += time.perf_counter() - t_send
        self._check_alive()
        return None, None

    def _device_action(self, msg: Action) -> np.ndarray:
        action = np.asarray(msg.action, dtype=np.float32)
        if action.shape != (self.bundle.action_size,):
            raise _Stop(R.LINK_ERROR, f"device sent {action.size} action values, the policy has "
                                      f"{self.bundle.action_size}: is the firmware built for this bundle?")
        if not np.isfinite(action).all():
            raise _Stop(R.LINK_ERROR, f"device sent a non-finite action {action.tolist()} (STATE {msg.state_seq})")
        return action

    def _checked(self, action: np.ndarray) -> np.ndarray:
        """Never hand the simulator an out-of-limit command: clamp to the contract's [-1, 1] and count it."""
        clamped = np.clip(action, -1.0, 1.0)
        if not np.array_equal(clamped, action):
            self.report.clamped_actions += 1
        return clamped.astype(np.float32)

    def _reference(self, obs: np.ndarray) -> np.ndarray | None:
        if self.session is None:
            return None
        return self.session.run(["action"], {"obs": obs.astype(np.float32)[None]})[0][0]

    def _on_fault(self, fault: Fault) -> None:
        name = _fault_name(fault.code)
        self.report.device_faults[name] = self.report.device_faults.get(name, 0) + 1
        if fault.code not in TOLERATED_FAULTS:
            raise _Stop(R.DEVICE_FAULT, f"device reported FAULT {name} (code {fault.code}, frame {fault.ref_seq}); "
                                        "it commands its safe action")

    def _check_alive(self) -> None:
        if not self.link.is_open and not os.path.exists(self.link.port):
            raise _Stop(R.PORT_VANISHED, f"serial port {self.link.port} vanished (device unplugged or crashed)")
        if self._waited > self.config.link_timeout_s:
            raise _Stop(R.DEVICE_TIMEOUT, f"device stopped answering: no ACTION in {self._waited * 1e3:.0f} ms of "
                                          f"waiting (limit {self.config.link_timeout_s * 1e3:.0f} ms)")

    def _link_lost(self, err: LinkError) -> _Stop:
        if not os.path.exists(self.link.port):
            return _Stop(R.PORT_VANISHED, f"serial port {self.link.port} vanished (device unplugged or crashed)")
        return _Stop(R.PORT_VANISHED, str(err))

    def _seen(self, msg: Message) -> None:
        """Count every decoded frame by type, so the report adds up to the link's ``frames_ok``.

        An ACTION seen outside a cycle's exchange (while arming, or drained at the end) answered a cycle that
        already ended: it is a late reply like those discarded inside the exchange.
        """
        name = type(msg).__name__.upper()
        self.report.received[name] = self.report.received.get(name, 0) + 1
        if isinstance(msg, Action) and not self._in_exchange:
            self.report.late_replies += 1

    def _warm_up(self) -> None:
        """First calls into torch and onnxruntime are slow; make them before the clock starts."""
        obs = self.env.reset(seed=self.config.seed)["policy"]
        self.env.step(torch.from_numpy(self.initial_action)[None])
        self._reference(obs[0].numpy())


def _fault_name(code: int) -> str:
    try:
        return FaultCode(code).name
    except ValueError:
        return f"UNKNOWN_{code}"


def _sleep_until(deadline: float) -> None:
    """Sleep to just before ``deadline``, then spin: ``time.sleep`` alone overshoots by up to a scheduler tick."""
    while (left := deadline - time.perf_counter()) > 0:
        if left > 0.0005:
            time.sleep(left - 0.0003)


def run_hil(bundle, link: SerialLink, config: HilConfig | None = None, inject: FaultInjection | None = None,
            callbacks: Sequence[CycleCallback] = ()) -> HilReport:
    """Run ``config.episodes`` closed-loop episodes against the device on ``link``; never raises for link faults."""
    return HilRun(bundle, link, config or HilConfig(), inject, callbacks).run()
