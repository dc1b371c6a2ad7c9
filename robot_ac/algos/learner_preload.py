"""Imported by the learner host (``robot_ac.algos.learner_host``): everything a learner needs before its first update.

Only imports and per-process checks that leave no thread running, so that forking the host stays safe.
"""

from __future__ import annotations

import contextlib

import torch
import torch._dynamo  # noqa: F401 - the compiler's imports, ~2 s here, paid once in the host
import torch._inductor.compile_fx  # noqa: F401

from robot_ac.algos import async_update  # noqa: F401 - the learner's own code
from robot_ac.compiler import remember_kernel_load_checks

remember_kernel_load_checks()
with contextlib.suppress(Exception):  # private API; a learner without it runs the same checks itself
    from torch._inductor import cpu_vec_isa

    cpu_vec_isa.valid_vec_isa_list()  # cached per process: learners inherit the result
