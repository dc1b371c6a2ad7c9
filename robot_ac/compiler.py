"""``torch.compile`` for robot_ac: one place that compiles, with a faster start in every new process.

Why: a training run starts two processes that compile (the trainer's simulator, the learner's loss), and with torch's
cache warm their start-up, not the compilation, is what a run waits for. Of the 3.5-3.7 s the first compiled
simulator step took here, 1.4-1.7 s went to inductor checking that its vectorized CPU kernels load: once per process
it starts one Python interpreter per instruction set (six on this CPU) to ``dlopen`` a test library
(``torch._inductor.cpu_vec_isa.VecISA._probe_load``). That library is content-addressed by its code, flags and
compiler, so a load that once succeeded on this machine succeeds again: the outcome is remembered in a file next to
it, and later processes skip the interpreter (first compiled step 1.9-2.3 s; ``runs/exp15/first_isa.py``).
A failed load is never remembered, so a machine where a check fails keeps failing it, as torch intends.

``precompile`` goes further for a function that a run calls with fixed shapes (the simulator step): it is compiled
ahead of time once per machine (``torch.compile(...).aot_compile``) and every later process loads the result from
disk instead of tracing the function again with dynamo, which took ~3 s of each run's start-up here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import warnings
from collections.abc import Callable, Iterable
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


PRECOMPILE_ENV = "ROBOT_AC_PRECOMPILE"  # "0" compiles in every process instead (plain torch.compile)
_LOADED: dict[Path, Callable] = {}  # artifacts this process has loaded or compiled, by path


def precompile(fn: Callable, key: str, sources: Iterable[Path], options: dict[str, Any] | None = None,
               state: Callable[[], Any] | None = None, device: torch.device | str = "cpu") -> Callable:
    """``fn`` (a function or bound method) compiled once per machine and loaded from disk by later processes.

    The loaded graph runs without dynamo's guards, so everything the graph depends on beyond its arguments' shapes
    must be in the artifact's name: ``key`` (the caller's configuration), the contents of the ``sources`` files (the
    code it traces), the torch and Python versions, the compile ``options`` and, at the first call, the shape, dtype
    and device of every tensor argument and of ``state()``: what the function reads besides its arguments whose
    shape, or whether it is None, can change after construction. A missing or unreadable artifact is compiled
    (``aot_compile``) and saved; where ahead-of-time compilation fails, the function is compiled in the process
    with ``options`` as given (their ``guard_filter_fn`` included), as ``torch.compile`` does. Functions that run
    on another ``device`` than the CPU are compiled in the process too: the ahead-of-time path is only tested here.
    """
    remember_kernel_load_checks()
    options = dict(options or {})
    if torch.device(device).type != "cpu" or os.environ.get(PRECOMPILE_ENV) == "0" or not _can_precompile():
        return torch.compile(fn, dynamic=False, options=options)
    # The artifact runs without guards, whatever filter the in-process fallback uses.
    artifact_options = {k: v for k, v in options.items() if k != "guard_filter_fn"}
    return _Precompiled(fn, _digest([key, *_source_digests(sources)], artifact_options), options, state)


class _Precompiled:
    """Loads or compiles on the first call, when the arguments' shapes are known."""

    def __init__(self, fn: Callable, key: str, options: dict[str, Any], state: Callable[[], Any] | None) -> None:
        self._fn, self._key, self._options, self._state = fn, key, options, state
        self._compiled: Callable | None = None
        self._jit: Callable | None = None  # the in-process fallback, which takes the bound method's own arguments
        self.loaded_from: Path | None = None  # the artifact this process loaded (None: it compiled one)

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None:
            compiled = self._load_or_compile(args)
            owner = getattr(self._fn, "__self__", None)  # a bound method's artifact takes its instance first
            self._compiled = compiled if owner is None or compiled is self._jit else functools.partial(compiled, owner)
        return self._compiled(*args)

    def _load_or_compile(self, args: tuple) -> Callable:
        name = getattr(self._fn, "__qualname__", "function").replace(".", "-").replace("<", "").replace(">", "")
        state = _describe(self._state()) if self._state is not None else ""
        path = precompiled_dir() / f"{name}-{_digest([self._key, _describe(args), state], {})}.bin"
        if path in _LOADED:  # another instance of the same configuration (the graph takes the instance as input)
            self.loaded_from = path
            return _LOADED[path]
        if path.is_file():
            try:
                with path.open("rb") as f:
                    compiled = torch.compiler.load_compiled_function(f)
                compiled.disable_guard_check()
                _LOADED[path] = compiled
                self.loaded_from = path
                return compiled
            except Exception as err:  # noqa: BLE001 - any unreadable artifact is compiled again
                warnings.warn(f"robot_ac: could not load the precompiled {path} ({err}); compiling it again",
                              stacklevel=3)
        options = {**self._options, "guard_filter_fn": torch.compiler.skip_all_guards_unsafe}
        try:
            compiled = torch.compile(self._fn, fullgraph=True, dynamic=False, options=options).aot_compile((args, {}))
        except Exception as err:  # noqa: BLE001 - fall back to compiling in this process
            warnings.warn(f"robot_ac: ahead-of-time compilation of {name} failed ({err}); compiling in the process",
                          stacklevel=3)
            self._jit = torch.compile(self._fn, dynamic=False, options=self._options)
            return self._jit
        compiled.disable_guard_check()
        _LOADED[path] = compiled
        with contextlib.suppress(OSError):  # a read-only cache only loses the speed-up
            path.parent.mkdir(parents=True, exist_ok=True)
            compiled.save_compiled_function(str(path))  # written to a temporary file, then renamed
        return compiled


def _can_precompile() -> bool:
    """Whether this torch has the (experimental) ahead-of-time API; older releases compile in the process."""
    return all(hasattr(torch.compiler, name) for name in ("load_compiled_function", "skip_all_guards_unsafe"))


def precompiled_dir() -> Path:
    """Where artifacts live: beside torch's own compile cache (``TORCHINDUCTOR_CACHE_DIR``), so they go with it."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return Path(cache_dir()) / "robot_ac_precompiled"


def _source_digests(sources: Iterable[Path]) -> list[str]:
    files = sorted({f for s in sources for f in (Path(s).rglob("*.py") if Path(s).is_dir() else [Path(s)])})
    return [f"{f.name}:{hashlib.sha256(f.read_bytes()).hexdigest()}" for f in files]


def _digest(parts: list[str], options: dict[str, Any]) -> str:
    text = repr([torch.__version__, sys.version, parts, sorted((k, repr(v)) for k, v in options.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _describe(value: Any) -> str:
    """Shapes, dtypes, devices and gradient flags of the tensors in ``value`` (nested in tuples, lists, dicts and
    objects)."""
    if isinstance(value, torch.Tensor):
        return f"T{tuple(value.shape)}{value.dtype}{value.device}{'grad' if value.requires_grad else ''}"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_describe(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_describe(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    return type(value).__qualname__ + _describe(dict(sorted(vars(value).items())))  # a container of tensors
