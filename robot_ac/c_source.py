"""C source helpers shared by the C99 policy exporter and the simulator's fused CPU step."""

from __future__ import annotations

import math
import os
import shutil

import numpy as np


def c_float(value: float, paren: bool = True) -> str:
    """A C float literal that round-trips float32 exactly (9 significant digits suffice for binary32).

    Negative literals are parenthesized (``paren``) so they can follow a binary operator.
    """
    v = float(np.float32(value))
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else ("(-INFINITY)" if paren else "-INFINITY")
    s = f"{v:.9g}"
    if not any(ch in s for ch in ".e"):
        s += ".0"
    return f"({s}f)" if paren and s.startswith("-") else f"{s}f"


def host_compiler() -> str | None:
    """The host C compiler (``$CC``, default ``cc``) as a path, or None where it is not installed."""
    return shutil.which(os.environ.get("CC", "cc"))
