"""Print a PolicyPlan as dependency-free C99 (``policy.h`` / ``policy.c``).

Design choices, all for microcontrollers: weights are ``static const float`` (they land in flash), the
intermediate activations live in a few static buffers re-used by liveness (no malloc, no stack arrays),
and the only include besides the header is ``<math.h>``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from robot_ac.c_source import c_float
from robot_ac.export import c_kernels
from robot_ac.export.onnx_graph import ConcatOp, ElementwiseOp, MatMulOp, Operand, PlanOp, PolicyPlan
from robot_ac.export.plan_opt import FusedElementwiseOp, dense_strides, optimize

GENERATOR = "robot_ac.export.onnx_to_c"
UNROLL = 4  # partial sums in the matrix-vector inner loop (the final sum below assumes 4)


def c_comment(text: str) -> str:
    """Make arbitrary text (ONNX node names) safe inside a C block comment."""
    return re.sub(r"[^\x20-\x7e]", "?", text).replace("*/", "*_/").replace("/*", "/_*")


def c_identifier(name: str) -> str:
    """Sanitize a contract field name into an upper-case C identifier fragment."""
    s = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_").upper()
    if not s:
        s = "FIELD"
    if s[0].isdigit():
        s = "_" + s
    return s


def c_string(text: str) -> str:
    """A C string literal with everything but plain printable ASCII escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= ord(ch) < 0x7F and ch != "?":  # '?' escaped to avoid trigraphs
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


# --------------------------------------------------------------------------------------------------
# Buffer allocation


def allocate_buffers(plan: PolicyPlan) -> tuple[dict[str, str], dict[str, int]]:
    """Map each runtime storage to a C array expression; reuse buffers once a storage is dead.

    Returns (storage -> C name, buffer name -> size in floats).
    """
    last_use: dict[str, int] = {}
    for i, op in enumerate(plan.ops):
        for operand in _op_inputs(op):
            if not operand.is_const:
                last_use[operand.name] = i
    names: dict[str, str] = {plan.input_storage: "obs"}
    if plan.output_storage and plan.output_storage != plan.input_storage:
        names[plan.output_storage] = "action"
    sizes: dict[str, int] = {}
    free: list[str] = []
    for i, op in enumerate(plan.ops):
        if op.out not in names:
            need = plan.storage_sizes[op.out]
            # best fit: the smallest free buffer already large enough, else grow the largest free one
            fits = sorted((b for b in free if sizes[b] >= need), key=lambda b: sizes[b])
            if fits:
                buf = fits[0]
            elif free:
                buf = max(free, key=lambda b: sizes[b])
                sizes[buf] = need
            else:
                buf = f"buf{len(sizes)}"
                sizes[buf] = need
            if buf in free:
                free.remove(buf)
            names[op.out] = buf
        for operand in _op_inputs(op):
            storage = operand.name
            if operand.is_const or last_use.get(storage) != i:
                continue
            buf = names[storage]
            if buf in sizes and buf not in free and buf != names[op.out]:
                free.append(buf)
    return names, sizes


def _op_inputs(op: PlanOp | FusedElementwiseOp) -> list[Operand]:
    if isinstance(op, MatMulOp):
        return [op.a, op.b] + ([op.bias] if op.bias else [])
    if isinstance(op, ElementwiseOp | FusedElementwiseOp):
        return list(op.inputs)
    return [p for p, _ in op.inputs]


# --------------------------------------------------------------------------------------------------
# Emission


class _Emitter:
    def __init__(self, plan: PolicyPlan) -> None:
        self.plan = plan
        self.names, self.buffers = allocate_buffers(plan)
        self.lines: list[str] = []
        self.base = 0  # extra indentation levels
        self.used_consts: set[str] = set()  # plan constants the body reads
        self.extra_consts: dict[str, tuple[np.ndarray, str]] = {}  # re-laid-out weights: name -> (values, origin)
        self.kernels: dict[str, list[str]] = {}  # matrix-vector kernels the body calls, by name
        self.uses_tanh = False

    def ref(self, operand: Operand, index: str) -> str:
        if operand.scalar is not None:
            return c_float(operand.scalar)
        if operand.is_const:
            self.used_consts.add(operand.name)
        name = operand.name if operand.is_const else self.names[operand.name]
        return f"{name}[{index}]"

    def out(self, op: PlanOp) -> str:
        return self.names[op.out]

    def emit(self, text: str, indent: int = 1) -> None:
        self.lines.append("    " * (self.base + indent) + text)

    # -- ops
    def matmul(self, op: MatMulOp) -> None:
        if _gemv_eligible(op):
            self.gemv(op)
            return
        loops_m = op.m > 1
        ind = 2 if loops_m else 1
        if loops_m:
            self.emit(f"for (int m = 0; m < {op.m}; ++m) {{")
        self.emit(f"for (int n = 0; n < {op.n}; ++n) {{", ind)

        def term(k: str) -> str:
            a_idx = _index([("m", op.a.strides[0] if loops_m else 0), (k, op.a.strides[1])])
            b_idx = _index([(k, op.b.strides[0]), ("n", op.b.strides[1])])
            return f"{self.ref(op.a, a_idx)} * {self.ref(op.b, b_idx)}"

        if op.k >= 2 * UNROLL:
            # UNROLL independent partial sums: fewer loop instructions per multiply-add on in-order cores
            main = op.k - op.k % UNROLL
            self.emit(" ".join(f"float acc{j} = 0.0f;" for j in range(UNROLL)), ind + 1)
            self.emit(f"for (int k = 0; k < {main}; k += {UNROLL}) {{", ind + 1)
            for j in range(UNROLL):
                self.emit(f"acc{j} += {term(f'(k + {j})' if j else 'k')};", ind + 2)
            self.emit("}", ind + 1)
            for k in range(main, op.k):
                self.emit(f"acc0 += {term(str(k))};", ind + 1)
            self.emit("const float acc = (acc0 + acc1) + (acc2 + acc3);", ind + 1)
        else:
            self.emit("float acc = 0.0f;", ind + 1)
            self.emit(f"for (int k = 0; k < {op.k}; ++k) {{", ind + 1)
            self.emit(f"acc += {term('k')};", ind + 2)
            self.emit("}", ind + 1)
        expr = "acc" if op.alpha == 1.0 else f"{c_float(op.alpha)} * acc"
        out_idx = _index([("m", op.n if loops_m else 0), ("n", 1)])
        if op.bias is not None:
            expr += f" + {self.ref(op.bias, out_idx)}"
        self.emit(f"{self.out(op)}[{out_idx}] = {expr};", ind + 1)
        self.emit("}", ind)
        if loops_m:
            self.emit("}")

    def gemv(self, op: MatMulOp) -> None:
        """One observation through a dense layer with constant weights: blocked kernels + a plain tail."""
        k, n = op.k, op.n
        weights = self.plan.consts[op.b.name]
        wname = f"{op.b.name}_blocked"
        self.extra_consts[wname] = (c_kernels.blocked_weights(weights, n, k), self.plan.const_origin[op.b.name])
        bias = ""
        if op.bias is not None:
            if op.bias.scalar is not None:
                bias = f"{wname}_bias"
                self.extra_consts[bias] = (np.full(n, op.bias.scalar, np.float32), op.node)
            else:
                bias = op.bias.name
                self.used_consts.add(bias)
        x, y = self.names[op.a.name], self.out(op)
        blocks = c_kernels.column_blocks(n)
        offset = 0  # into the blocked weights
        for width in c_kernels.BLOCK_WIDTHS:
            starts = [start for start, w in blocks if w == width]
            if not starts:
                continue
            name = c_kernels.kernel_name(width, k, bool(bias))
            self.kernels.setdefault(name, c_kernels.kernel_source(width, k, bool(bias)))
            b_arg = (lambda idx: f"{bias} + {idx}") if bias else (lambda idx: "0")
            if len(starts) == 1:
                s0 = starts[0]
                self.emit(f"{name}({x}, {wname} + {offset}, {b_arg(s0)}, {y} + {s0});")
            else:
                first, last = starts[0], starts[-1] + width
                self.emit(f"for (int n = {first}; n < {last}; n += {width}) {{")
                self.emit(f"{name}({x}, {wname} + {offset} + (n - {first}) * {k}, {b_arg('n')}, {y} + n);", 2)
                self.emit("}")
            offset += len(starts) * width * k
        done = sum(w for _, w in blocks)
        if done < n:
            self.emit(f"for (int n = {done}; n < {n}; ++n) {{")
            self.emit(f"const float *row = {wname} + {offset} + (n - {done}) * {k};", 2)
            self.emit(f"float acc = {x}[0] * row[0];", 2)
            self.emit(f"for (int k = 1; k < {k}; ++k) {{", 2)
            self.emit(f"acc += {x}[k] * row[k];", 3)
            self.emit("}", 2)
            self.emit(f"{y}[n] = {'acc + ' + bias + '[n]' if bias else 'acc'};", 2)
            self.emit("}")

    def fused(self, op: FusedElementwiseOp) -> None:
        """A chain of flat elementwise ops in one loop, the value kept in ``v`` between stages."""
        self.emit(f"for (int i = 0; i < {op.size}; ++i) {{")
        head_args = [self.ref(o, "i") for o in op.head.inputs]
        self.emit(f"float v = {self.expression(op.head, head_args)};", 2)
        for stage, idx in op.stages:
            args = ["v" if i == idx else self.ref(o, "i") for i, o in enumerate(stage.inputs)]
            self.emit(f"v = {self.expression(stage, args)};", 2)
        self.emit(f"{self.out(op)}[i] = v;", 2)
        self.emit("}")

    def expression(self, op: ElementwiseOp, args: list[str]) -> str:
        if op.kind == "Tanh":
            self.uses_tanh = True
        return _expression(op, args)

    def elementwise(self, op: ElementwiseOp) -> None:
        size = int(math.prod(op.shape))
        dense = dense_strides(op.shape)
        flat = all(o.scalar is not None or not o.strides or o.strides == dense for o in op.inputs)
        if flat:
            args = [self.ref(o, "i") for o in op.inputs]
            self.emit(f"for (int i = 0; i < {size}; ++i) {{")
            self.emit(f"{self.out(op)}[i] = {self.expression(op, args)};", 2)
            self.emit("}")
            return
        # broadcasting or transposing a runtime tensor: one nested loop per output dimension longer than 1
        loop_dims = [d for d, extent in enumerate(op.shape) if extent != 1]
        for depth, d in enumerate(loop_dims):
            self.emit(f"for (int i{d} = 0; i{d} < {op.shape[d]}; ++i{d}) {{", depth + 1)
        args = []
        for o in op.inputs:
            strides = o.strides or dense
            args.append(self.ref(o, _index([(f"i{d}", strides[d]) for d in loop_dims])))
        out_idx = _index([(f"i{d}", dense[d]) for d in loop_dims])
        self.emit(f"{self.out(op)}[{out_idx}] = {self.expression(op, args)};", len(loop_dims) + 1)
        for depth in reversed(range(len(loop_dims))):
            self.emit("}", depth + 1)

    def concat(self, op: ConcatOp) -> None:
        total = sum(block for _, block in op.inputs)
        offset = 0
        for operand, block in op.inputs:
            if op.outer > 1:
                self.emit(f"for (int o = 0; o < {op.outer}; ++o) {{")
                self.emit(f"for (int i = 0; i < {block}; ++i) {{", 2)
                dst = _index([("o", total), ("i", 1)], offset)
                src = _index([("o", block), ("i", 1)])
                self.emit(f"{self.out(op)}[{dst}] = {self.ref(operand, src)};", 3)
                self.emit("}", 2)
                self.emit("}")
            else:
                self.emit(f"for (int i = 0; i < {block}; ++i) {{")
                self.emit(f"{self.out(op)}[{_index([('i', 1)], offset)}] = {self.ref(operand, 'i')};", 2)
                self.emit("}")
            offset += block

    def body(self) -> list[str]:
        plan = self.plan
        for op in plan.ops:
            self.emit(f"/* node '{c_comment(op.node)}' ({op.op_type}) */")
            self.emit("{")
            self.base = 1  # op code sits inside its own { } block
            if isinstance(op, MatMulOp):
                self.matmul(op)
            elif isinstance(op, ElementwiseOp):
                self.elementwise(op)
            elif isinstance(op, FusedElementwiseOp):
                self.fused(op)
            else:
                self.concat(op)
            self.base = 0
            self.emit("}")
        if plan.output_const is not None:
            self.emit("/* the graph output does not depend on the observation */")
            self.emit(f"for (int i = 0; i < {plan.n_act}; ++i) {{")
            self.emit("action[i] = output_const[i];", 2)
            self.emit("}")
        elif plan.output_storage == plan.input_storage:
            self.emit(f"for (int i = 0; i < {plan.n_act}; ++i) {{")
            self.emit("action[i] = obs[i];", 2)
            self.emit("}")
        return self.lines


def _gemv_eligible(op: MatMulOp) -> bool:
    """One row times constant weights stored [n][k], contiguous input, alpha 1: the blocked-kernel case."""
    return (
        op.m == 1
        and op.n >= min(c_kernels.BLOCK_WIDTHS)
        and op.alpha == 1.0
        and op.b.is_const
        and op.b.scalar is None
        and op.b.strides == (1, op.k)
        and not op.a.is_const
        and op.a.strides[1] == 1
        and (op.bias is None or op.bias.scalar is not None or not op.bias.strides)
    )


def _index(terms: list[tuple[str, int]], offset: int = 0) -> str:
    parts = []
    for var, stride in terms:
        if stride == 0:
            continue
        parts.append(var if stride == 1 else f"{var} * {stride}")
    if offset:
        parts.append(str(offset))
    return " + ".join(parts) if parts else "0"


def _expression(op: ElementwiseOp, args: list[str]) -> str:
    """C expression of one element; mirrors onnxruntime's CPU kernels' formulas."""
    k = op.kind
    if k in ("Add", "Sub", "Mul", "Div"):
        sym = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}[k]
        return f"{args[0]} {sym} {args[1]}"
    x = args[0]
    if k == "Copy":
        return x
    if k == "Relu":
        return f"{x} > 0.0f ? {x} : 0.0f"
    if k == "LeakyRelu":
        return f"{x} >= 0.0f ? {x} : {c_float(op.params['alpha'])} * {x}"
    if k == "Elu":
        return f"{x} >= 0.0f ? {x} : {c_float(op.params['alpha'])} * (expf({x}) - 1.0f)"
    if k == "Tanh":
        return f"robot_ac_tanhf({x})"
    if k == "Sigmoid":
        return f"1.0f / (1.0f + expf(-{x}))"
    if k == "Clip":
        lo, hi = op.params["min"], op.params["max"]
        expr = x
        if lo != -math.inf:
            expr = f"({expr} < {c_float(lo)} ? {c_float(lo)} : {expr})"
        if hi != math.inf:
            expr = f"({expr} > {c_float(hi)} ? {c_float(hi)} : {expr})"
        return expr
    if k == "Neg":
        return f"-{x}"
    if k == "Abs":
        return f"fabsf({x})"
    if k == "Exp":
        return f"expf({x})"
    if k == "Softsign":
        return f"{x} / (1.0f + fabsf({x}))"
    raise AssertionError(k)


def _const_block(name: str, values: np.ndarray, origin: str) -> list[str]:
    lines = [f"/* from node '{c_comment(origin)}' */", f"static const float {name}[{values.size}] = {{"]
    per_line = 6
    for i in range(0, values.size, per_line):
        lines.append("    " + ", ".join(c_float(v, paren=False) for v in values[i : i + per_line]) + ",")
    lines.append("};")
    return lines


# --------------------------------------------------------------------------------------------------
# Files


def header_source(plan: PolicyPlan, contract_lines: list[str], model_sha256: str) -> str:
    """``policy.h``: sizes, the contract's ``#define`` lines, and the two entry points."""
    lines = [
        "/* Generated by robot_ac.export.onnx_to_c -- do not edit.",
        f" * Source ONNX sha256: {model_sha256}",
        " * policy_step() uses static scratch buffers: it is not reentrant; call it from one context only.",
        " * obs and action must not overlap. */",
        "#ifndef ROBOT_AC_POLICY_H",
        "#define ROBOT_AC_POLICY_H",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"#define ROBOT_AC_POLICY_N_OBS {plan.n_obs}",
        f"#define ROBOT_AC_POLICY_N_ACT {plan.n_act}",
    ]
    lines += contract_lines
    lines += [
        "",
        "/* One control step: obs[ROBOT_AC_POLICY_N_OBS] -> action[ROBOT_AC_POLICY_N_ACT]. */",
        "void policy_step(const float *obs, float *action);",
        "/* Clear internal state between episodes (no-op: this policy has no state). */",
        "void policy_reset(void);",
        "",
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        "#endif /* ROBOT_AC_POLICY_H */",
        "",
    ]
    return "\n".join(lines)


def c_source(plan: PolicyPlan, model_sha256: str) -> str:
    """``policy.c``: constants, scratch buffers, helper kernels and the straight-line forward pass."""
    plan = optimize(plan)
    em = _Emitter(plan)
    body = em.body()
    lines = [
        "/* Generated by robot_ac.export.onnx_to_c -- do not edit.",
        f" * Source ONNX sha256: {model_sha256}",
        f" * Input '{c_comment(plan.input_name)}' -> output '{c_comment(plan.output_name)}'. */",
        "#include <math.h>",
        "",
        '#include "policy.h"',
        "",
    ]
    for name, values in plan.consts.items():
        if name in em.used_consts:
            lines += _const_block(name, values, plan.const_origin[name])
    for name, (values, origin) in em.extra_consts.items():
        lines += _const_block(name, values, f"{origin} (blocked for the matrix-vector kernels)")
    if plan.output_const is not None:
        lines += _const_block("output_const", plan.output_const, "graph output")
    if em.buffers:
        lines += ["", "/* scratch activations, reused once dead */"]
    for buf, size in em.buffers.items():
        lines.append(f"static float {buf}[{size}];")
    if em.kernels:
        lines += ["", *c_kernels.asm_guard_source()]
        for kernel in em.kernels.values():
            lines += ["", *kernel]
    if em.uses_tanh:
        lines += ["", *c_kernels.tanh_source()]
    lines += [
        "",
        "void policy_reset(void)",
        "{",
        "}",
        "",
        "void policy_step(const float *obs, float *action)",
        "{",
    ]
    if plan.output_const is not None:
        lines.append("    (void)obs;")
    lines += body
    lines += ["}", ""]
    return "\n".join(lines)
