"""Exact rewrites of a PolicyPlan before printing C: fewer loops and buffers, the same float32 arithmetic.

* Two Clips in a row become one (``clip(clip(x, a, b), c, d) == clip(x, clip(a, c, d), clip(b, c, d))``,
  NaN passing through both sides alike); robot_ac bundles clamp twice (actor and export wrapper).
* A chain of flat elementwise ops whose intermediate results have no other reader runs as one loop that
  keeps the value in a register (e.g. ``(obs - mean) / std`` then the normalizer's clip). Each stage still
  rounds to float32 exactly as before, so results are bit-identical; only the stores and loads go.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from robot_ac.export.onnx_graph import ConcatOp, ElementwiseOp, MatMulOp, Operand, PolicyPlan


@dataclass
class FusedElementwiseOp:
    """``head`` computes the first value; each stage applies to it with the chained operand at ``index``."""

    head: ElementwiseOp
    stages: list[tuple[ElementwiseOp, int]]
    out: str

    @property
    def node(self) -> str:
        return " + ".join([self.head.node, *(s.node for s, _ in self.stages)])

    @property
    def op_type(self) -> str:
        return "+".join([self.head.op_type, *(s.op_type for s, _ in self.stages)])

    @property
    def size(self) -> int:
        return int(math.prod(self.head.shape))

    @property
    def inputs(self) -> list[Operand]:
        extra = [o for s, idx in self.stages for i, o in enumerate(s.inputs) if i != idx]
        return [*self.head.inputs, *extra]


def dense_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major strides of a contiguous tensor of ``shape``."""
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def is_flat(op: ElementwiseOp) -> bool:
    """Every operand is read at the output's flat index (or is a scalar literal)."""
    dense = dense_strides(op.shape)
    return all(o.scalar is not None or not o.strides or o.strides == dense for o in op.inputs)


def _readers(ops: list, storage: str) -> list[int]:
    return [i for i, op in enumerate(ops) if any(not o.is_const and o.name == storage for o in _inputs(op))]


def _inputs(op) -> list[Operand]:
    if isinstance(op, MatMulOp):
        return [op.a, op.b] + ([op.bias] if op.bias else [])
    if isinstance(op, ConcatOp):
        return [p for p, _ in op.inputs]
    return list(op.inputs)


def merge_clips(plan: PolicyPlan) -> list:
    ops = list(plan.ops)
    i = 0
    while i < len(ops):
        op = ops[i]
        readers = _readers(ops, op.out) if isinstance(op, ElementwiseOp) and op.kind == "Clip" else []
        if len(readers) == 1 and op.out != plan.output_storage:
            nxt = ops[readers[0]]
            if isinstance(nxt, ElementwiseOp) and nxt.kind == "Clip" and nxt.shape == op.shape:
                lo2, hi2 = nxt.params["min"], nxt.params["max"]

                def clamp(v: float, lo: float = lo2, hi: float = hi2) -> float:
                    return min(max(v, lo), hi)

                params = {"min": clamp(op.params["min"]), "max": clamp(op.params["max"])}
                merged = ElementwiseOp(f"{op.node} + {nxt.node}", "Clip", nxt.out, "Clip", op.shape,
                                       [op.inputs[0]], params)  # fmt: skip
                ops[readers[0]] = merged
                del ops[i]
                continue
        i += 1
    return ops


def fuse_chains(plan: PolicyPlan, ops: list) -> list:
    out: list = []
    for op in ops:
        prev = out[-1] if out else None
        if isinstance(op, ElementwiseOp) and is_flat(op) and prev is not None:
            head = prev.head if isinstance(prev, FusedElementwiseOp) else prev
            chained = [i for i, o in enumerate(op.inputs) if not o.is_const]
            if (
                isinstance(head, ElementwiseOp)
                and is_flat(head)
                and math.prod(head.shape) == math.prod(op.shape)
                and len(chained) == 1
                and op.inputs[chained[0]].name == prev.out
                and prev.out != plan.output_storage
                and len(_readers(ops, prev.out)) == 1
            ):
                stages = prev.stages if isinstance(prev, FusedElementwiseOp) else []
                out[-1] = FusedElementwiseOp(head, [*stages, (op, chained[0])], op.out)
                continue
        out.append(op)
    return out


def optimize(plan: PolicyPlan) -> PolicyPlan:
    """A copy of ``plan`` with merged clips and fused elementwise chains."""
    return dataclasses.replace(plan, ops=fuse_chains(plan, merge_clips(plan)))
