"""Small ONNX graphs for the C exporter tests, built with onnx.helper (no torch)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def make_model(
    nodes: list[onnx.NodeProto],
    inits: dict[str, np.ndarray],
    n_obs: int,
    n_act: int,
    batch: int | str = "batch",
    opset: int = OPSET,
    in_name: str = "obs",
    out_name: str = "act",
    in_dims: list | None = None,
) -> onnx.ModelProto:
    dims = in_dims if in_dims is not None else [batch, n_obs]
    graph = helper.make_graph(
        nodes,
        "test_policy",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [batch, n_act])],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def rand(rng: np.random.Generator, *shape: int, scale: float = 0.5) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def gemm_mlp(n_obs: int = 146, hidden: tuple[int, ...] = (64, 64), n_act: int = 4, act: str = "Tanh", seed: int = 0):
    """The usual policy MLP: Gemm(transB=1) + activation per hidden layer, linear output."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev, width = [], {}, "obs", n_obs
    for i, h in enumerate([*hidden, n_act]):
        inits[f"W{i}"] = rand(rng, h, width, scale=1 / np.sqrt(width))
        inits[f"b{i}"] = rand(rng, h, scale=0.1)
        out = "act" if i == len(hidden) else f"h{i}"
        lin = out if i == len(hidden) else f"z{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [lin], name=f"fc{i}", transB=1))
        if i < len(hidden):
            nodes.append(helper.make_node(act, [lin], [out], name=f"act{i}"))
        prev, width = out, h
    return make_model(nodes, inits, n_obs, n_act)
