"""Read an ONNX MLP graph into a small, fully static plan that the C emitter can print.

Why a custom reader instead of onnx shape inference: the C code handles exactly one observation, so the
batch dimension is pinned to 1 and every other dimension must be static. Folding everything that does not
depend on the observation (``Constant``, ``Shape`` chains, weight transposes...) at export time leaves
only a handful of runtime op kinds, each with known static shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper


class ExportError(Exception):
    """A user-facing export failure (bad input file, inconsistent contract...)."""


class UnsupportedOnnxError(ExportError):
    """The graph uses an operator or a shape the C exporter cannot express; names the node and op type."""

    def __init__(self, node_name: str, op_type: str, reason: str) -> None:
        self.node_name = node_name
        self.op_type = op_type
        self.reason = reason
        super().__init__(f"node '{node_name}' (op {op_type}): {reason}")


# --------------------------------------------------------------------------------------------------
# Values while walking the graph


@dataclass(frozen=True)
class Const:
    """A value known at export time."""

    array: np.ndarray


@dataclass(frozen=True)
class Runtime:
    """A float32 tensor computed per observation; ``storage`` names the buffer it lives in (views share)."""

    shape: tuple[int, ...]
    storage: str

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


Value = Const | Runtime


# --------------------------------------------------------------------------------------------------
# Runtime ops of the plan. Operands are either a storage name (runtime) or a constant name.


@dataclass
class Operand:
    """How an op reads one input: runtime storage or a named constant, plus its index strides."""

    name: str
    is_const: bool
    strides: tuple[int, ...] = ()  # per loop dimension of the op; empty = flat index / scalar
    scalar: float | None = None  # a size-1 constant printed as a literal


@dataclass
class MatMulOp:
    """``out[m, n] = alpha * sum_k a[m, k] * b[k, n] + bias[m, n]``; a and b index via (row, col) strides."""

    node: str
    op_type: str
    out: str
    a: Operand
    b: Operand
    m: int
    k: int
    n: int
    alpha: float = 1.0
    bias: Operand | None = None  # constant, flat [m*n] or scalar


@dataclass
class ElementwiseOp:
    """Unary (``kind`` in UNARY_OPS) or binary (``kind`` in BINARY_OPS) op over a static output shape."""

    node: str
    op_type: str
    out: str
    kind: str
    shape: tuple[int, ...]
    inputs: list[Operand]
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class ConcatOp:
    """Copy blocks of each input into the output; ``blocks[i]`` elements per outer step for input i."""

    node: str
    op_type: str
    out: str
    outer: int
    inputs: list[tuple[Operand, int]]


PlanOp = MatMulOp | ElementwiseOp | ConcatOp

UNARY_OPS = ("Relu", "LeakyRelu", "Elu", "Tanh", "Sigmoid", "Clip", "Neg", "Abs", "Exp", "Softsign")
BINARY_OPS = ("Add", "Sub", "Mul", "Div")
VIEW_OPS = ("Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Dropout")


@dataclass
class PolicyPlan:
    """Everything the C emitter needs: sizes, named constants and ops in execution order."""

    n_obs: int
    n_act: int
    input_name: str
    output_name: str
    input_storage: str
    output_storage: str
    output_const: np.ndarray | None  # output that does not depend on the observation (degenerate)
    consts: dict[str, np.ndarray]
    const_origin: dict[str, str]
    storage_sizes: dict[str, int]
    ops: list[PlanOp]
    op_types: list[str]
    metadata: dict[str, str]


# --------------------------------------------------------------------------------------------------
# Constant folding with numpy, also used for attribute decoding


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray:
    attrs = _attrs(node)
    if "value" in attrs:
        return numpy_helper.to_array(attrs["value"])
    if "value_float" in attrs:
        return np.array(attrs["value_float"], dtype=np.float32)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], dtype=np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], dtype=np.int64)
    raise UnsupportedOnnxError(node.name, node.op_type, f"unsupported Constant attribute(s) {sorted(attrs)}")


def _reshape_target(node: onnx.NodeProto, in_shape: tuple[int, ...], target: np.ndarray) -> tuple[int, ...]:
    """ONNX Reshape semantics: 0 copies the input dim (unless allowzero), -1 is inferred."""
    allowzero = int(_attrs(node).get("allowzero", 0))
    dims = [int(d) for d in target.reshape(-1)]
    out = []
    for i, d in enumerate(dims):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise UnsupportedOnnxError(node.name, node.op_type, "shape entry 0 beyond input rank")
            out.append(in_shape[i])
        else:
            out.append(d)
    total = math.prod(in_shape)
    if out.count(-1) > 1:
        raise UnsupportedOnnxError(node.name, node.op_type, "more than one -1 in target shape")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        if known == 0 or total % known:
            raise UnsupportedOnnxError(node.name, node.op_type, f"cannot reshape {in_shape} to {dims}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise UnsupportedOnnxError(node.name, node.op_type, f"cannot reshape {in_shape} to {dims}")
    return tuple(out)


def _axes_arg(node: onnx.NodeProto, inputs: list[Value | None]) -> list[int] | None:
    """Squeeze/Unsqueeze axes: attribute before opset 13, constant second input after."""
    attrs = _attrs(node)
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(inputs) > 1 and inputs[1] is not None:
        if not isinstance(inputs[1], Const):
            raise UnsupportedOnnxError(node.name, node.op_type, "axes must be a constant")
        return [int(a) for a in inputs[1].array.reshape(-1)]
    return None


def _squeeze_shape(node: onnx.NodeProto, shape: tuple[int, ...], axes: list[int] | None) -> tuple[int, ...]:
    if axes is None:
        return tuple(d for d in shape if d != 1)
    norm = {a % len(shape) for a in axes}
    return tuple(d for i, d in enumerate(shape) if i not in norm)


def _unsqueeze_shape(node: onnx.NodeProto, shape: tuple[int, ...], axes: list[int] | None) -> tuple[int, ...]:
    if axes is None:
        raise UnsupportedOnnxError(node.name, node.op_type, "missing axes")
    rank = len(shape) + len(axes)
    norm = sorted(a % rank for a in axes)
    out = list(shape)
    for a in norm:
        out.insert(a, 1)
    return tuple(out)


def _flatten_shape(node: onnx.NodeProto, shape: tuple[int, ...]) -> tuple[int, ...]:
    axis = int(_attrs(node).get("axis", 1))
    axis = axis % (len(shape) + 1) if axis < 0 else axis
    return (int(math.prod(shape[:axis])), int(math.prod(shape[axis:])))


def _view_shape(node: onnx.NodeProto, shape: tuple[int, ...], inputs: list[Value | None]) -> tuple[int, ...]:
    """Output shape of a layout-only op (the data stays where it is in row-major order)."""
    op = node.op_type
    if op in ("Identity", "Dropout"):
        return shape
    if op == "Flatten":
        return _flatten_shape(node, shape)
    if op == "Reshape":
        if len(inputs) < 2 or not isinstance(inputs[1], Const):
            raise UnsupportedOnnxError(node.name, op, "target shape is not constant (dynamic reshape)")
        return _reshape_target(node, shape, inputs[1].array)
    if op == "Squeeze":
        return _squeeze_shape(node, shape, _axes_arg(node, inputs))
    if op == "Unsqueeze":
        return _unsqueeze_shape(node, shape, _axes_arg(node, inputs))
    raise AssertionError(op)


def _clip_bounds(node: onnx.NodeProto, inputs: list[Value | None]) -> tuple[float, float]:
    attrs = _attrs(node)
    lo = float(attrs.get("min", -math.inf))
    hi = float(attrs.get("max", math.inf))
    for idx in (1, 2):
        if len(inputs) > idx and inputs[idx] is not None:
            v = inputs[idx]
            if not isinstance(v, Const):
                raise UnsupportedOnnxError(node.name, node.op_type, "min/max must be constants")
            if idx == 1:
                lo = float(v.array.reshape(-1)[0])
            else:
                hi = float(v.array.reshape(-1)[0])
    return lo, hi


def _unary_numpy(node: onnx.NodeProto, x: np.ndarray, inputs: list[Value | None]) -> np.ndarray:
    op = node.op_type
    attrs = _attrs(node)
    if op == "Relu":
        return np.maximum(x, 0).astype(x.dtype)
    if op == "LeakyRelu":
        a = float(attrs.get("alpha", 0.01))
        return np.where(x >= 0, x, a * x).astype(x.dtype)
    if op == "Elu":
        a = float(attrs.get("alpha", 1.0))
        return np.where(x >= 0, x, a * (np.exp(x) - 1)).astype(x.dtype)
    if op == "Tanh":
        return np.tanh(x)
    if op == "Sigmoid":
        return (1 / (1 + np.exp(-x))).astype(x.dtype)
    if op == "Clip":
        lo, hi = _clip_bounds(node, inputs)
        return np.minimum(np.maximum(x, lo), hi).astype(x.dtype)
    if op == "Neg":
        return -x
    if op == "Abs":
        return np.abs(x)
    if op == "Exp":
        return np.exp(x)
    if op == "Softsign":
        return (x / (1 + np.abs(x))).astype(x.dtype)
    raise AssertionError(op)


def _gemm_numpy(node: onnx.NodeProto, vals: list[np.ndarray]) -> np.ndarray:
    attrs = _attrs(node)
    a, b = vals[0], vals[1]
    if int(attrs.get("transA", 0)):
        a = a.T
    if int(attrs.get("transB", 0)):
        b = b.T
    y = float(attrs.get("alpha", 1.0)) * (a @ b)
    if len(vals) > 2:
        y = y + float(attrs.get("beta", 1.0)) * vals[2]
    return y.astype(a.dtype)


def _fold(node: onnx.NodeProto, inputs: list[Value | None]) -> list[np.ndarray]:
    """Evaluate a node whose inputs are all constants."""
    op = node.op_type
    vals = [v.array if isinstance(v, Const) else None for v in inputs]
    attrs = _attrs(node)
    x = vals[0] if vals else None
    if op in UNARY_OPS:
        return [_unary_numpy(node, x, inputs)]
    if op in BINARY_OPS:
        a, b = vals[0], vals[1]
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        if np.issubdtype(a.dtype, np.integer) and op == "Div":
            return [(a // b).astype(a.dtype)]
        return [fn(a, b).astype(np.result_type(a, b))]
    if op in VIEW_OPS:
        return [x.reshape(_view_shape(node, tuple(x.shape), inputs))]
    if op == "Gemm":
        return [_gemm_numpy(node, [v for v in vals if v is not None])]
    if op == "MatMul":
        return [np.matmul(vals[0], vals[1])]
    if op == "Concat":
        return [np.concatenate([v for v in vals if v is not None], axis=int(attrs["axis"]))]
    if op == "Shape":
        return [np.array(x.shape, dtype=np.int64)]
    if op == "Gather":
        return [np.take(x, vals[1], axis=int(attrs.get("axis", 0)))]
    if op == "Transpose":
        perm = attrs.get("perm")
        return [np.transpose(x, perm)]
    if op == "Cast":
        return [x.astype(onnx.helper.tensor_dtype_to_np_dtype(int(attrs["to"])))]
    if op == "Slice":
        return [_slice_numpy(node, x, vals)]
    if op == "ConstantOfShape":
        value = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        return [np.full(tuple(int(d) for d in x), value.reshape(-1)[0], dtype=value.dtype)]
    raise UnsupportedOnnxError(node.name, op, "operator not supported by the C exporter")


def _slice_numpy(node: onnx.NodeProto, x: np.ndarray, vals: list[np.ndarray | None]) -> np.ndarray:
    attrs = _attrs(node)
    if "starts" in attrs:  # opset < 10
        starts, ends = list(attrs["starts"]), list(attrs["ends"])
        axes = list(attrs.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = [int(v) for v in vals[1]], [int(v) for v in vals[2]]
        axes = [int(v) for v in vals[3]] if len(vals) > 3 and vals[3] is not None else list(range(len(starts)))
        steps = [int(v) for v in vals[4]] if len(vals) > 4 and vals[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        index[a] = slice(int(s), int(e), int(st))
    return x[tuple(index)]


# --------------------------------------------------------------------------------------------------
# Lowering runtime nodes into plan ops


class _Builder:
    """Walks the ONNX nodes in order, folding constants and lowering the rest into plan ops."""

    def __init__(self) -> None:
        self.env: dict[str, Value] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.const_origin: dict[str, str] = {}
        self.storage_sizes: dict[str, int] = {}
        self.ops: list[PlanOp] = []
        self.op_types: list[str] = []

    # -- helpers
    def new_storage(self, shape: tuple[int, ...]) -> Runtime:
        name = f"t{len(self.storage_sizes)}"
        self.storage_sizes[name] = int(math.prod(shape))
        return Runtime(tuple(shape), name)

    def add_const(self, array: np.ndarray, origin: str) -> str:
        name = f"w{len(self.consts)}"
        self.consts[name] = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
        self.const_origin[name] = origin
        return name

    def float_const(self, node: onnx.NodeProto, c: Const) -> np.ndarray:
        if c.array.dtype.kind not in "fiu":
            raise UnsupportedOnnxError(node.name, node.op_type, f"constant of dtype {c.array.dtype}")
        return c.array.astype(np.float32)

    # -- ops
    def lower(self, node: onnx.NodeProto, inputs: list[Value | None]) -> list[Value]:
        op = node.op_type
        if op in VIEW_OPS:
            x = inputs[0]
            assert isinstance(x, Runtime)
            return [Runtime(_view_shape(node, x.shape, inputs), x.storage)]
        if op == "Cast":
            to = int(_attrs(node)["to"])
            if to != onnx.TensorProto.FLOAT:
                raise UnsupportedOnnxError(node.name, op, "cast of the observation path to a non-float type")
            return [inputs[0]]
        if op == "Shape":
            x = inputs[0]
            assert isinstance(x, Runtime)
            return [Const(np.array(x.shape, dtype=np.int64))]
        if op in UNARY_OPS:
            return [self.lower_unary(node, inputs)]
        if op in BINARY_OPS:
            return [self.lower_binary(node, inputs)]
        if op == "Gemm":
            return [self.lower_gemm(node, inputs)]
        if op == "MatMul":
            return [self.lower_matmul(node, inputs)]
        if op == "Concat":
            return [self.lower_concat(node, inputs)]
        if op == "Transpose":
            return [self.lower_transpose(node, inputs)]
        raise UnsupportedOnnxError(node.name, op, "operator not supported by the C exporter")

    def lower_transpose(self, node: onnx.NodeProto, inputs: list[Value | None]) -> Runtime:
        """A strided copy (kind "Copy"); an identity permutation is only a view."""
        x = inputs[0]
        assert isinstance(x, Runtime)
        perm = [int(p) for p in _attrs(node).get("perm", range(len(x.shape) - 1, -1, -1))]
        if sorted(perm) != list(range(len(x.shape))):
            raise UnsupportedOnnxError(node.name, node.op_type, f"perm {perm} does not match rank {len(x.shape)}")
        out_shape = tuple(x.shape[p] for p in perm)
        dense_in = _dense_strides(x.shape)
        strides = tuple(dense_in[p] for p in perm)
        dense_out = _dense_strides(out_shape)
        if all(a == b for a, b, extent in zip(strides, dense_out, out_shape, strict=True) if extent != 1):
            return Runtime(out_shape, x.storage)  # only size-1 dims moved: same memory order
        out = self.new_storage(out_shape)
        src = Operand(x.storage, False, strides)
        self.ops.append(ElementwiseOp(node.name, node.op_type, out.storage, "Copy", out_shape, [src]))
        return out

    def lower_unary(self, node: onnx.NodeProto, inputs: list[Value | None]) -> Runtime:
        x = inputs[0]
        if not isinstance(x, Runtime) or any(isinstance(v, Runtime) for v in inputs[1:]):
            raise UnsupportedOnnxError(node.name, node.op_type, "only the first input may depend on the observation")
        attrs = _attrs(node)
        params: dict[str, float] = {}
        if node.op_type == "LeakyRelu":
            params["alpha"] = float(attrs.get("alpha", 0.01))
        elif node.op_type == "Elu":
            params["alpha"] = float(attrs.get("alpha", 1.0))
        elif node.op_type == "Clip":
            params["min"], params["max"] = _clip_bounds(node, inputs)
        out = self.new_storage(x.shape)
        src = Operand(x.storage, False)
        self.ops.append(ElementwiseOp(node.name, node.op_type, out.storage, node.op_type, x.shape, [src], params))
        return out

    def lower_binary(self, node: onnx.NodeProto, inputs: list[Value | None]) -> Runtime:
        a, b = inputs[0], inputs[1]
        shapes = [v.shape if isinstance(v, Runtime) else tuple(v.array.shape) for v in (a, b)]
        try:
            out_shape = tuple(int(d) for d in np.broadcast_shapes(*shapes))
        except ValueError as err:
            raise UnsupportedOnnxError(node.name, node.op_type, f"shapes {shapes} do not broadcast") from err
        operands = []
        for v, shape in zip((a, b), shapes, strict=True):
            if isinstance(v, Const):
                arr = self.float_const(node, v)
                if arr.size == 1:
                    operands.append(Operand("", True, scalar=float(arr.reshape(-1)[0])))
                else:
                    full = np.broadcast_to(arr, out_shape)
                    operands.append(Operand(self.add_const(full, node.name), True, _dense_strides(out_shape)))
            else:
                operands.append(Operand(v.storage, False, _broadcast_strides(shape, out_shape)))
        out = self.new_storage(out_shape)
        self.ops.append(ElementwiseOp(node.name, node.op_type, out.storage, node.op_type, out_shape, operands))
        return out

    def matmul_operand(
        self, node: onnx.NodeProto, v: Value | None, transpose: bool, role: str
    ) -> tuple[Operand, int, int]:
        """Operand for logical matrix [rows, cols]; constants are re-laid out for contiguous inner loops."""
        if isinstance(v, Const):
            mat = self.float_const(node, v)
            if mat.ndim != 2:
                raise UnsupportedOnnxError(node.name, node.op_type, f"{role} must be 2-D, got {mat.shape}")
            if transpose:
                mat = mat.T
            rows, cols = mat.shape
            if role == "B":  # store [cols, rows] so the k loop walks contiguous memory
                name = self.add_const(mat.T, node.name)
                return Operand(name, True, (1, rows)), rows, cols
            name = self.add_const(mat, node.name)
            return Operand(name, True, (cols, 1)), rows, cols
        assert isinstance(v, Runtime)
        if len(v.shape) != 2:
            raise UnsupportedOnnxError(node.name, node.op_type, f"{role} must be 2-D, got shape {v.shape}")
        r, c = v.shape
        if transpose:
            return Operand(v.storage, False, (1, c)), c, r
        return Operand(v.storage, False, (c, 1)), r, c

    def lower_gemm(self, node: onnx.NodeProto, inputs: list[Value | None]) -> Runtime:
        attrs = _attrs(node)
        a, am, ak = self.matmul_operand(node, inputs[0], bool(int(attrs.get("transA", 0))), "A")
        b, bk, bn = self.matmul_operand(node, inputs[1], bool(int(attrs.get("transB", 0))), "B")
        if ak != bk:
            raise UnsupportedOnnxError(node.name, node.op_type, f"inner dimensions differ ({ak} vs {bk})")
        bias = None
        beta = float(attrs.get("beta", 1.0))
        c = inputs[2] if len(inputs) > 2 else None
        if isinstance(c, Runtime):
            raise UnsupportedOnnxError(node.name, node.op_type, "bias C must be a constant")
        if isinstance(c, Const) and beta != 0.0:
            arr = beta * self.float_const(node, c)
            if arr.size == 1:
                bias = Operand("", True, scalar=float(arr.reshape(-1)[0]))
            else:
                try:
                    full = np.broadcast_to(arr, (am, bn))
                except ValueError as err:
                    raise UnsupportedOnnxError(node.name, node.op_type, "C does not broadcast") from err
                bias = Operand(self.add_const(full, node.name), True)
        out = self.new_storage((am, bn))
        alpha = float(attrs.get("alpha", 1.0))
        self.ops.append(MatMulOp(node.name, node.op_type, out.storage, a, b, am, ak, bn, alpha, bias))
        return out

    def lower_matmul(self, node: onnx.NodeProto, inputs: list[Value | None]) -> Runtime:
        x, y = inputs[0], inputs[1]
        rank = [len(v.shape) if isinstance(v, Runtime) else v.array.ndim for v in (x, y)]
        if any(r not in (1, 2) for r in rank):
            raise UnsupportedOnnxError(node.name, node.op_type, f"only 1-D/2-D operands supported, ranks {rank}")
        # numpy semantics: a 1-D left operand is a row, a 1-D right operand is a column; that dim is dropped.
        xv = _as_matrix(x, row=True)
        yv = _as_matrix(y, row=False)
        a, am, ak = self.matmul_operand(node, xv, False, "A")
        b, bk, bn = self.matmul_operand(node, yv, False, "B")
        if ak != bk:
            raise UnsupportedOnnxError(node.name, node.op_type, f"inner dimensions differ ({ak} vs {bk})")
        out = self.new_storage((am, bn))
        self.ops.append(MatMulOp(node.name, node.op_type, out.storage, a, b, am, ak, bn))
        shape: tuple[int, ...] = (am, bn)
        if rank[1] == 1:
            shape = shape[:-1]
        if rank[0] == 1:
            shape = shape[1:] if rank[1] == 2 else ()
        return Runtime(shape, out.storage)

    def lower_concat(self, node: onnx.NodeProto, inputs: list[Value | None]) -> Runtime:
        present = [v for v in inputs if v is not None]
        shapes = [v.shape if isinstance(v, Runtime) else tuple(v.array.shape) for v in present]
        rank = len(shapes[0])
        axis = int(_attrs(node)["axis"]) % rank
        for s in shapes:
            if len(s) != rank or s[:axis] != shapes[0][:axis] or s[axis + 1 :] != shapes[0][axis + 1 :]:
                raise UnsupportedOnnxError(node.name, node.op_type, f"incompatible shapes {shapes}")
        outer = int(math.prod(shapes[0][:axis]))
        inner = int(math.prod(shapes[0][axis + 1 :]))
        parts: list[tuple[Operand, int]] = []
        for v, s in zip(present, shapes, strict=True):
            block = s[axis] * inner
            if block == 0:
                continue
            if isinstance(v, Const):
                parts.append((Operand(self.add_const(self.float_const(node, v), node.name), True), block))
            else:
                parts.append((Operand(v.storage, False), block))
        out_shape = list(shapes[0])
        out_shape[axis] = sum(s[axis] for s in shapes)
        out = self.new_storage(tuple(out_shape))
        self.ops.append(ConcatOp(node.name, node.op_type, out.storage, outer, parts))
        return out


def _as_matrix(v: Value | None, row: bool) -> Value | None:
    if isinstance(v, Const) and v.array.ndim == 1:
        return Const(v.array.reshape(1, -1) if row else v.array.reshape(-1, 1))
    if isinstance(v, Runtime) and len(v.shape) == 1:
        return Runtime((1, v.shape[0]) if row else (v.shape[0], 1), v.storage)
    return v


def _dense_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def _broadcast_strides(shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Strides of ``shape`` read at the indices of ``out_shape`` (0 where broadcast)."""
    padded = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    dense = _dense_strides(padded)
    return tuple(0 if d == 1 and o != 1 else s for d, o, s in zip(padded, out_shape, dense, strict=True))


# --------------------------------------------------------------------------------------------------
# Entry point


def _value_info_shape(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    dims: list[int | str | None] = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


def _input_shape(vi: onnx.ValueInfoProto) -> tuple[int, ...]:
    """Pin the batch dimension to 1 and demand every other dimension to be static."""
    if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise UnsupportedOnnxError(vi.name, "graph input", "observation input must be float32")
    dims = _value_info_shape(vi)
    if len(dims) == 1 and isinstance(dims[0], int):
        return (dims[0],)
    if len(dims) != 2:
        raise UnsupportedOnnxError(vi.name, "graph input", f"expected shape [batch, n_obs], got {dims}")
    batch, n_obs = dims
    if isinstance(batch, int) and batch != 1:
        raise UnsupportedOnnxError(vi.name, "graph input", f"static batch size {batch}; expected 1 or dynamic")
    if not isinstance(n_obs, int) or n_obs <= 0:
        raise UnsupportedOnnxError(
            vi.name, "graph input", f"dimension 1 is dynamic ({n_obs!r}); only the batch dim may be dynamic"
        )
    return (1, n_obs)


def load_model(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """Load (and check) an ONNX model; user-facing errors become ExportError."""
    if isinstance(source, onnx.ModelProto):
        return source
    path = Path(source)
    if not path.is_file():
        raise ExportError(f"ONNX file not found: {path}")
    if path.stat().st_size == 0:
        raise ExportError(f"{path}: file is empty (an interrupted copy?)")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # onnx raises several unrelated types for corrupt files
        raise ExportError(f"cannot read ONNX model {path}: {err}") from err
    return model


def build_plan(model: onnx.ModelProto) -> PolicyPlan:
    """Fold and lower ``model`` into a static plan for one observation."""
    graph = model.graph
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise UnsupportedOnnxError("<model>", f"domain {opset.domain}", "custom operator domains unsupported")
    b = _Builder()
    init_names = set()
    for init in graph.initializer:
        b.env[init.name] = Const(numpy_helper.to_array(init))
        init_names.add(init.name)
    inputs = [vi for vi in graph.input if vi.name not in init_names]
    if len(inputs) != 1:
        raise ExportError(f"expected exactly one graph input (the observation), found {[v.name for v in inputs]}")
    if len(graph.output) != 1:
        raise ExportError(f"expected exactly one graph output (the action), found {[v.name for v in graph.output]}")
    in_vi = inputs[0]
    in_shape = _input_shape(in_vi)
    input_storage = "obs"
    b.storage_sizes[input_storage] = int(math.prod(in_shape))
    b.env[in_vi.name] = Runtime(in_shape, input_storage)

    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedOnnxError(node.name, f"{node.domain}::{node.op_type}", "custom operator domain")
        ins: list[Value | None] = []
        for name in node.input:
            if not name:
                ins.append(None)
                continue
            if name not in b.env:
                raise UnsupportedOnnxError(node.name, node.op_type, f"input '{name}' is undefined or not sorted")
            ins.append(b.env[name])
        if node.op_type == "Constant":
            outs: list[Value] = [Const(_constant_node_value(node))]
        elif all(v is None or isinstance(v, Const) for v in ins):
            outs = [Const(a) for a in _fold(node, ins)]
        else:
            outs = b.lower(node, ins)
        b.op_types.append(node.op_type)
        for name, value in zip(node.output, outs, strict=False):
            if name:
                b.env[name] = value
        extra = [n for n in node.output[len(outs) :] if n]
        if extra:
            raise UnsupportedOnnxError(node.name, node.op_type, f"unsupported extra outputs {extra}")

    out_name = graph.output[0].name
    out = b.env.get(out_name)
    if out is None:
        raise ExportError(f"graph output '{out_name}' is never produced")
    if graph.output[0].type.tensor_type.elem_type not in (0, onnx.TensorProto.FLOAT):
        raise ExportError(f"graph output '{out_name}' must be float32")
    if isinstance(out, Const):
        arr = out.array.astype(np.float32).reshape(-1)
        return PolicyPlan(
            b.storage_sizes[input_storage], arr.size, in_vi.name, out_name, input_storage, "", arr,
            b.consts, b.const_origin, b.storage_sizes, b.ops, b.op_types, _metadata(model),
        )  # fmt: skip
    return PolicyPlan(
        n_obs=b.storage_sizes[input_storage],
        n_act=out.size,
        input_name=in_vi.name,
        output_name=out_name,
        input_storage=input_storage,
        output_storage=out.storage,
        output_const=None,
        consts=b.consts,
        const_origin=b.const_origin,
        storage_sizes=b.storage_sizes,
        ops=b.ops,
        op_types=b.op_types,
        metadata=_metadata(model),
    )


def _metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}
