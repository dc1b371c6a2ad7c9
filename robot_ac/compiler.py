"""``torch.compile`` for robot_ac: one place that compiles, with a faster start in every new process.

Why: a training run starts two processes that compile (the trainer's simulator, the learner's loss), and with torch's
cache warm their start-up, not the compilation, is what a run waits for. Of the 3.5-3.7 s the first compiled
simulator step took here, 1.4-1.7 s went to inductor checking that its vectorized CPU kernels load: once per process
it starts one Python interpreter per instruction set (six on this CPU) to ``dlopen`` a test library
(``torch._inductor.cpu_vec_isa.VecISA._probe_load``). That library is content-addressed by its code, flags and
compiler, so a load that once succeeded on this machine succeeds again: the outcome is remembered in a file next to
it, and later processes skip the interpreter (first compiled step 1.9-2.3 s; ``runs/exp15/first_isa.py``).
A failed load is never remembered, so a machine where a check fails keeps failing it, as torch intends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_REMEMBERED_ATTR = "_robot_ac_remembers_loads"


def compile_function(fn: Callable, **kwargs: Any) -> Callable:
    """``torch.compile(fn, **kwargs)``, after making the process's inductor checks remember their outcome."""
    remember_kernel_load_checks()
    return torch.compile(fn, **kwargs)


def tensor_and_key_guards(entries: list) -> list[bool]:
    """A ``guard_filter_fn``: keep dynamo's tensor guards and the guard on ``self._graph_key``, drop the rest.

    For methods whose configuration is fixed at construction and summarised in ``_graph_key`` (which the method
    must read): dynamo's default guards walk every config attribute and submodule on each call.
    """
    return [e.guard_type == "TENSOR_MATCH" or e.name == "self._graph_key" for e in entries]


def remember_kernel_load_checks() -> None:
    """Wrap inductor's per-process load check of its CPU test libraries with an on-disk memory of successes.

    Idempotent; does nothing on a torch without that check (it is private API: older or newer versions may differ).
    """
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:
        return
    vec_isa = getattr(cpu_vec_isa, "VecISA", None)
    check = getattr(vec_isa, "_probe_load", None)
    if check is not None and not getattr(check, _REMEMBERED_ATTR, False):
        vec_isa._probe_load = remembering_successes(check)


def remembering_successes(check: Callable[[Any, str], bool]) -> Callable[[Any, str], bool]:
    """``check(self, library_path)`` that, once it succeeds for a library, answers True from a marker file."""

    def remembered(self: Any, output_path: str) -> bool:
        marker = Path(f"{output_path}.loads-with-torch-{torch.__version__}")
        if marker.is_file():
            return True
        loads = check(self, output_path)
        if loads:
            with contextlib.suppress(OSError):  # a read-only cache only loses the speed-up
                marker.touch()
        return loads

    setattr(remembered, _REMEMBERED_ATTR, True)
    return remembered
