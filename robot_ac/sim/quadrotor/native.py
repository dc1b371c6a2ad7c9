"""The quadrotor step as one fused C function on the CPU: generated for an environment, compiled once per machine.

Why: compiled by inductor, the torch step (``QuadrotorEnv._step_core``) ran at 1.0-1.3M env-steps/s at 4096
environments on this 2-core machine, against issue #2's target of 6M; ``native_step.c`` computes the same step in
one pass over the environments. This module writes the header that configures it (the task's and robot's constants,
and one C statement per observation column, generated from the task's observation contract), compiles it with the
system C compiler into a shared library named by the digest of its source, flags, compiler and CPU, and calls it
through ``ctypes``. The torch step stays the reference: on CUDA, and where no C compiler works, it is what runs.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from robot_ac.c_source import c_float, host_compiler
from robot_ac.sim.quadrotor.params import NUM_PARAMETER_ROWS, QuadrotorBatchParams

if TYPE_CHECKING:
    from robot_ac.sim.quadrotor.env import QuadrotorEnv

SOURCE = Path(__file__).with_name("native_step.c")
NATIVE_ENV = "ROBOT_AC_NATIVE_STEP"  # "0": compile the torch step with inductor instead
# -ffp-contract=off: no fused multiply-adds, so each operation rounds as in torch's eager step.
# -fno-math-errno: lets sqrtf vectorize. -march=native: the library is named by this CPU's flags too.
CFLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math",
          "-fno-tree-loop-distribute-patterns", "-fopenmp", "-fPIC", "-shared", "-std=gnu11")
# Where a compiler refuses those (clang without OpenMP, -march=native on some ARM toolchains): one thread, generic ISA.
PORTABLE_CFLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-std=gnu11")
_FLAG_OUTPUTS = ("terminated", "truncated", "out_of_bounds", "nonfinite_state", "nonfinite_action")
_POINTERS = ("columns", "history", "episode_step", "integral", "params", "delay", "cursor", "counter", "seed",
             "actions", "weights", "pool_state", "pool_params", "pool_delay",
             "columns_out", "history_out", "episode_step_out", "integral_out", "params_out", "delay_out",
             "cursor_out", "counter_out", "reward", *_FLAG_OUTPUTS, "terms", "position_error")


class NativeStepUnavailable(RuntimeError):
    """No C compiler, or it failed: the caller compiles the torch step instead."""


def _column_expressions(env: QuadrotorEnv) -> dict[str, list[str] | str]:
    """Per observation field: one C expression per column, or (row fields) the source pointer of a copy.

    Mirrors ``QuadrotorEnv._field_providers``; ``tests/sim/test_native_step.py`` checks every field against it.
    Names in scope, for environment ``k`` of a block (structure of arrays): ``S`` (state, dynamics layout),
    ``INTEG``, ``BODY`` (the 14 parameter rows), ``DELAY``; and ``hist``, the environment's history row, newest first.
    """
    r = env.num_rotors

    def s(q: int) -> str:
        return f"S[{q}][k]"

    def integ(q: int) -> str:
        return f"INTEG[{q}][k]"

    def par(q: int) -> str:
        return f"BODY[{q}][k]"

    qw, qx, qy, qz = s(3), s(4), s(5), s(6)
    ratios = QuadrotorBatchParams.ratio_scale(env.robot).tolist()
    return {
        "position_error": [s(0), s(1), s(2)],
        "rotation_matrix": [
            f"1.0f - 2.0f * ({qy} * {qy} + {qz} * {qz})", f"2.0f * ({qx} * {qy} - {qw} * {qz})",
            f"2.0f * ({qx} * {qz} + {qw} * {qy})", f"2.0f * ({qx} * {qy} + {qw} * {qz})",
            f"1.0f - 2.0f * ({qx} * {qx} + {qz} * {qz})", f"2.0f * ({qy} * {qz} - {qw} * {qx})",
            f"2.0f * ({qx} * {qz} - {qw} * {qy})", f"2.0f * ({qy} * {qz} + {qw} * {qx})",
            f"1.0f - 2.0f * ({qx} * {qx} + {qy} * {qy})"],
        "linear_velocity": [s(7), s(8), s(9)],
        "angular_velocity": [s(10), s(11), s(12)],
        "action_history": "hist",
        "position_error_integral": [integ(0), integ(1), integ(2)],
        "previous_action": "hist",
        "rotor_speeds": [f"{s(13 + k)} / {c_float(env.robot.rpm_max)}" for k in range(r)],
        "disturbance_force": [par(8), par(9), par(10)],
        "disturbance_torque": [par(11), par(12), par(13)],
        "parameter_ratios": [f"{par(k)} * {c_float(ratios[k])}" for k in range(7)],
        "actuation_delay": ["DELAY[k]"],
    }


def generate_header(env: QuadrotorEnv) -> str:
    """``step_config.h`` for ``env``: constants, and the functions that compute and write the observation groups."""
    task, robot, reward = env.task, env.robot, env.task.reward
    h = env.dt / env.task.substeps
    noise = env._noise_columns if env.observation_noise else None
    noisy, stds = (range(noise[0].start, noise[0].stop), noise[1].tolist()) if noise is not None else (range(0), [])
    lines = [
        "/* Generated by robot_ac/sim/quadrotor/native.py for one environment configuration: do not edit. */",
        f"#define R {env.num_rotors}", f"#define HIST {env._buffer_length}", f"#define MAX_DELAY {env._max_delay}",
        f"#define SUBSTEPS {task.substeps}", f"#define HALF_H {c_float(0.5 * h)}", f"#define FULL_H {c_float(h)}",
        f"#define SIXTH_H {c_float(h / 6.0)}", f"#define DT {c_float(env.dt)}",
        f"#define GRAVITY {c_float(robot.gravity)}", f"#define RPM_MIN {c_float(robot.rpm_min)}",
        f"#define RPM_HALF_SPAN {c_float(0.5 * (robot.rpm_max - robot.rpm_min))}",
        f"#define HOVER_ACTION {c_float(env.hover_action)}",
        f"#define POSITION_LIMIT {c_float(task.termination.position_limit)}",
        f"#define EPISODE_STEPS {int(env.episode_steps)}",
        f"#define INTEGRAL_LIMIT {c_float(_integral_limit())}",
        f"#define REWARD_CONSTANT {c_float(reward.constant)}", f"#define REWARD_SCALE {c_float(reward.scale)}",
        f"#define REWARD_ACTION_RATE {c_float(reward.action_rate)}",
        f"#define REWARD_ACTION_MAGNITUDE {c_float(reward.action_magnitude)}",
        f"#define REWARD_POSITION_LINEAR {c_float(reward.position_linear)}",
        f"#define REWARD_FLOOR {c_float(reward.floor)}",
        f"#define REWARD_TERMINATION_PENALTY {c_float(reward.termination_penalty)}",
        f"#define NOISE_K {len(noisy)}",
        f"#define TWO_PI_OVER_2_24 {c_float(2.0 * np.pi / (1 << 24))}",
        f"#define NUM_GROUPS {len(env.contract.groups)}",
    ]
    for name, values in (("ROTOR_X", [p[0] for p in robot.rotor_positions]),
                         ("ROTOR_Y", [p[1] for p in robot.rotor_positions]),
                         ("ROTOR_YAW", list(robot.rotor_yaw_directions))):
        lines.append(f"static const float {name}[R] = {{{', '.join(c_float(v) for v in values)}}};")
    lines += _group_writers(_group_layouts(env, noisy, stds))
    return "\n".join(lines) + "\n"


def _group_layouts(env: QuadrotorEnv, noisy: range, stds: list[float]) -> list[tuple[str, int, list]]:
    """Per observation group: its name, size and columns in order, each ``(column, C expression, 0)`` or, for a row
    field, ``(first column, source pointer, size)``; noise is added to the policy columns that have it."""
    expressions = _column_expressions(env)
    layouts = []
    for group, spec in env.contract.groups.items():
        items, column = [], 0
        for field in spec.fields:
            source = expressions[field.name]
            if isinstance(source, str):  # a row field: copied, never noisy (as _group_observation)
                items.append((column, source, field.size))
            else:
                for k, expression in enumerate(source):
                    c = column + k
                    if group == "policy" and c in noisy and stds[c - noisy.start] != 0.0:
                        expression = f"({expression}) + NZ[{c - noisy.start}][k] * {c_float(stds[c - noisy.start])}"
                    items.append((c, expression, 0))
            column += field.size
        layouts.append((group, spec.size, items))
    return layouts


def _group_writers(layouts: list[tuple[str, int, list]]) -> list[str]:
    """``stage_groups`` and ``write_staged``: the groups' computed columns for a block of environments at once, then
    one environment's rows.

    Why: computed inside the row writes, the columns' arithmetic ran one environment at a time. As one loop over the
    block's environments, on its structure of arrays, the compiler vectorizes it; the row writes then only copy.
    Resets (phase two) use the same two functions on a block of one environment.
    """
    staged = [expression for _, _, items in layouts for _, expression, row_size in items if not row_size]
    lines = ["", f"#define STAGED_COLUMNS {len(staged)}",
             "static inline void stage_groups(int nb, const Block *restrict S, const Block *restrict INTEG,",
             "                                const Block *restrict BODY, const Block *restrict NZ,",
             "                                const float *restrict DELAY, Block *restrict staged) {",
             "    (void)S; (void)INTEG; (void)BODY; (void)NZ; (void)DELAY; (void)staged;",
             "    for (int k = 0; k < nb; k++) {"]
    lines += [f"        staged[{q}][k] = {expression};" for q, expression in enumerate(staged)]
    lines += ["    }", "}", "",
              "static inline void write_staged(float *const *out, int64_t i, int k, const Block *restrict staged,",
              "                                const float *hist) {",
              "    (void)staged; (void)hist; (void)k;"]
    q = 0
    for g, (group, size, items) in enumerate(layouts):
        lines += [f"    {{ /* {group} */", f"        float *row = out[{g}] + i * {size};"]
        for column, expression, row_size in items:
            if row_size:  # a row field: ``expression`` is its source pointer
                lines.append(f"        copy_floats(row + {column}, {expression}, {row_size});")
            else:
                lines.append(f"        row[{column}] = staged[{q}][k];")
                q += 1
        lines.append("    }")
    lines.append("}")
    return lines



def _integral_limit() -> float:
    from robot_ac.sim.quadrotor.env import INTEGRAL_LIMIT_M_S

    return INTEGRAL_LIMIT_M_S


def _compiler() -> str:
    compiler = host_compiler()
    if compiler is None:
        raise NativeStepUnavailable(f"no C compiler: {os.environ.get('CC', 'cc')!r} is not on PATH (set CC)")
    return compiler


@functools.cache
def _machine_tag(compiler: str) -> str:
    """What the library depends on beyond its source: the compiler's version and this CPU's instruction sets."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False).stdout
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    return f"{version}|{platform.machine()}|{flags}"


def library_for(header: str) -> Path:
    """The compiled library for ``header`` with this package's step source; compiled on first use, then cached."""
    from robot_ac.compiler import precompiled_dir

    compiler = _compiler()
    source = SOURCE.read_text()
    errors = []
    for flags in (CFLAGS, PORTABLE_CFLAGS):
        digest = hashlib.sha256(repr((source, header, flags, _machine_tag(compiler))).encode()).hexdigest()[:32]
        path = precompiled_dir() / f"quadrotor_step-{digest}.so"
        if path.is_file():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            (Path(tmp) / "step_config.h").write_text(header)
            (Path(tmp) / SOURCE.name).write_text(source)
            built = Path(tmp) / path.name
            result = subprocess.run([compiler, *flags, "-o", str(built), SOURCE.name, "-lm"], cwd=tmp,
                                    capture_output=True, text=True, check=False)
            if result.returncode == 0:
                os.replace(built, path)  # atomic: another process sees the whole library or none
                return path
            errors.append(result.stderr[-1000:])
    raise NativeStepUnavailable(f"{compiler} could not build the native step:\n" + "\n".join(errors))


def _args_struct(num_groups: int) -> type[ctypes.Structure]:
    class StepArgs(ctypes.Structure):  # StepArgs of native_step.c: its pointers (groups' last), then three sizes
        _fields_ = [("pointers", ctypes.c_void_p * (len(_POINTERS) + 2 * num_groups)),
                    ("n", ctypes.c_int64), ("pool_size", ctypes.c_int64), ("threads", ctypes.c_int64)]

    return StepArgs


_INPUTS = _POINTERS[:14]  # the first 14 pointers are read, the rest written
_DTYPES = tuple(torch.int64 if name in ("episode_step", "delay", "cursor", "counter", "seed", "pool_delay")
                else torch.float32 for name in _INPUTS)


def native_step(env: QuadrotorEnv) -> Callable[..., tuple]:
    """A function with ``env._step_core``'s arguments and results that runs the fused C step.

    Raises ``NativeStepUnavailable`` when the library cannot be built (the caller then compiles the torch step).
    The wrapper is lean on purpose: with one environment, Python around the call is most of the step's time.
    """
    if env.device.type != "cpu":
        raise NativeStepUnavailable(f"the native step runs on the CPU, not {env.device}")
    if os.environ.get(NATIVE_ENV) == "0":
        raise NativeStepUnavailable(f"{NATIVE_ENV}=0")
    library = ctypes.CDLL(str(library_for(generate_header(env))))
    function = library.robot_ac_quadrotor_step
    function.argtypes = [ctypes.c_void_p]
    function.restype = None
    sizes = [(group, spec.size) for group, spec in env.contract.groups.items()]
    args = _args_struct(len(sizes))()
    n = args.n = env.num_envs

    def step(columns: torch.Tensor, history: torch.Tensor, episode_step: torch.Tensor, integral: torch.Tensor,
             params: QuadrotorBatchParams, cursor: torch.Tensor, counter: torch.Tensor, actions: torch.Tensor,
             weights: torch.Tensor) -> tuple:
        pool = env._pool_params
        inputs = (columns, history, episode_step, integral, params.values, params.delay_steps, cursor, counter,
                  env._noise_seed, actions, weights, env._pool_state, pool.values, pool.delay_steps)
        if not all(t.is_cpu and t.dtype is d and t.is_contiguous() for t, d in zip(inputs, _DTYPES, strict=True)):
            inputs = tuple(_checked(*item) for item in zip(_INPUTS, inputs, _DTYPES, strict=True))
        state, new_history = torch.empty(columns.shape), inputs[1]  # the history: updated in place
        steps, integral_out, values = torch.empty(n, dtype=torch.int64), torch.empty(3, n), torch.empty(
            NUM_PARAMETER_ROWS, n)
        delay, cursor_out, counter_out = torch.empty(n, dtype=torch.int64), torch.empty_like(cursor), torch.empty_like(
            counter)
        reward, terms, position_error = torch.empty(n), torch.empty(n, 7), torch.empty(n)
        flags = [torch.empty(n, dtype=torch.bool) for _ in _FLAG_OUTPUTS]
        observations = {group: torch.empty(n, size) for group, size in sizes}
        final = {group: torch.empty(n, size) for group, size in sizes}
        outputs = (state, new_history, steps, integral_out, values, delay, cursor_out, counter_out, reward, *flags,
                   terms, position_error, *observations.values(), *final.values())
        args.pointers[:] = [t.data_ptr() for t in (*inputs, *outputs)]  # the inputs stay alive until the call ends
        args.pool_size = env._pool_state.shape[1]
        args.threads = torch.get_num_threads()
        function(ctypes.byref(args))
        terminated, truncated, out_of_bounds, nonfinite_state, nonfinite_action = flags
        info = {"reward_terms": terms, "out_of_bounds": out_of_bounds, "nonfinite_state": nonfinite_state,
                "nonfinite_action": nonfinite_action, "position_error": position_error, "episode_step": steps,
                "final_observations": final}
        return (state, new_history, steps, integral_out, QuadrotorBatchParams(values, delay), cursor_out, counter_out,
                observations, reward, terminated, truncated, info)

    return step


def _checked(name: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The C step reads raw memory: ``tensor`` as a contiguous CPU tensor, refused unless of the expected dtype."""
    if tensor.dtype != dtype or tensor.device.type != "cpu":
        raise ValueError(f"native quadrotor step: {name} must be a {dtype} CPU tensor, got {tensor.dtype} on "
                         f"{tensor.device}")
    return tensor.contiguous()

