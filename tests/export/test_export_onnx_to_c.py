"""ONNX -> C99 exporter: numerics against onnxruntime on the host compiler, errors, header contract."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper
from onnx_builders import gemm_mlp, make_model, rand

from robot_ac.c_source import c_float
from robot_ac.export.c_codegen import c_identifier
from robot_ac.export.contract import ContractError
from robot_ac.export.onnx_to_c import ExportError, UnsupportedOnnxError, export_onnx_to_c, generate_c
from robot_ac.export.verify_c import verify

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler 'cc' on PATH")


def check_host(model: onnx.ModelProto, tmp_path, n: int = 400, contract: dict | None = None) -> None:
    out = tmp_path / "c"
    export_onnx_to_c(model, out, contract)
    report = verify(model, out, n_random=n, qemu=False, work_dir=tmp_path / "work")
    assert report.host is not None, report.host_skipped
    assert report.host.passed, report.host


# --------------------------------------------------------------------------------------------------
# onnx.helper graphs


@needs_cc
@pytest.mark.parametrize("act", ["Tanh", "Relu", "Elu", "Sigmoid", "LeakyRelu", "Softsign", "Neg", "Abs", "Exp"])
def test_gemm_mlp_matches_onnxruntime(act, tmp_path):
    hidden = (16,) if act == "Exp" else (16, 8)  # exp(exp(x)) would amplify float32 rounding beyond 1e-5
    check_host(gemm_mlp(n_obs=13, hidden=hidden, n_act=3, act=act), tmp_path)


@needs_cc
def test_gemm_attributes_and_matmul_paths(tmp_path):
    rng = np.random.default_rng(1)
    inits = {
        "W0": rand(rng, 6, 5),  # transB=0: [K, N]
        "C0": rand(rng, 5),
        "W1": rand(rng, 7, 5),  # used with transB=1
        "W2": rand(rng, 7, 4),
        "b2": rand(rng, 1, 4),
        "s": np.array(0.5, np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["obs", "W0", "C0"], ["g0"], name="g0", alpha=0.75, beta=2.0),
        helper.make_node("Gemm", ["g0", "W1", "s"], ["g1"], name="g1", transB=1, beta=-1.5),
        helper.make_node("Elu", ["g1"], ["e1"], name="elu", alpha=0.7),
        helper.make_node("MatMul", ["e1", "W2"], ["m2"], name="mm"),
        helper.make_node("Add", ["m2", "b2"], ["a2"], name="bias"),
        helper.make_node("LeakyRelu", ["a2"], ["act"], name="lrelu", alpha=0.2),
    ]
    check_host(make_model(nodes, inits, 6, 4), tmp_path)


@needs_cc
def test_gemm_trans_a_on_observation_static_batch(tmp_path):
    """transA on the runtime input with batch 1: [1,K]^T @ [1,N] -> [K,N], flattened."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Gemm", ["obs", "B"], ["g"], name="outer", transA=1),
        helper.make_node("Flatten", ["g"], ["act"], name="flat", axis=0),
    ]
    check_host(make_model(nodes, {"B": rand(rng, 1, 3)}, 4, 12, batch=1), tmp_path)


@needs_cc
def test_normalization_clip_concat_reshape(tmp_path):
    """(obs - mean) / std baked as initializers, Clip (inputs), Concat with a constant, view ops, Constant."""
    rng = np.random.default_rng(3)
    n = 10
    inits = {
        "mean": rand(rng, n, scale=2.0),
        "std": (np.abs(rand(rng, n)) + 0.5).astype(np.float32),
        "lo": np.array(-1.5, np.float32),
        "hi": np.array(2.0, np.float32),
        "extra": rand(rng, 1, 3),
        "W": rand(rng, 8, n + 3),
        "shape": np.array([-1, 2, 4], np.int64),
        "shape2": np.array([0, -1], np.int64),
    }
    nodes = [
        helper.make_node("Sub", ["obs", "mean"], ["c"], name="center"),
        helper.make_node("Div", ["c", "std"], ["z"], name="scale"),
        helper.make_node("Clip", ["z", "lo", "hi"], ["zc"], name="clip"),
        helper.make_node("Concat", ["zc", "extra"], ["cat"], name="cat", axis=1),
        helper.make_node("Gemm", ["cat", "W"], ["h"], name="fc", transB=1),
        helper.make_node("Constant", [], ["half"], name="k", value_float=0.5),
        helper.make_node("Mul", ["h", "half"], ["hh"], name="halve"),
        helper.make_node("Reshape", ["hh", "shape"], ["r"], name="reshape"),
        helper.make_node("Sigmoid", ["r"], ["sg"], name="sig"),
        helper.make_node("Mul", ["r", "sg"], ["swish"], name="swish"),  # runtime * runtime
        helper.make_node("Reshape", ["swish", "shape2"], ["flat"], name="reshape2"),
        helper.make_node("Identity", ["flat"], ["act"], name="id"),
    ]
    check_host(make_model(nodes, inits, n, 8, batch=1), tmp_path)  # Concat with a [1, 3] constant: batch 1


@needs_cc
def test_clip_attribute_form_old_opset(tmp_path):
    nodes = [
        helper.make_node("Clip", ["obs"], ["c"], name="clip6", min=-0.3, max=0.4),
        helper.make_node("Tanh", ["c"], ["act"], name="t"),
    ]
    check_host(make_model(nodes, {}, 5, 5, opset=6), tmp_path)


@needs_cc
def test_dynamic_batch_reshape_through_shape_chain(tmp_path):
    """``x.view(x.size(0), -1)`` style: Shape -> Gather -> Unsqueeze -> Concat -> Reshape is folded."""
    inits = {"idx": np.array(0, np.int64), "minus1": np.array([-1], np.int64), "ax": np.array([0], np.int64)}
    nodes = [
        helper.make_node("Shape", ["obs"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "idx"], ["b"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["b", "ax"], ["b1"], name="unsq"),
        helper.make_node("Concat", ["b1", "minus1"], ["target"], name="cat_shape", axis=0),
        helper.make_node("Reshape", ["obs", "target"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["act"], name="relu"),
    ]
    check_host(make_model(nodes, inits, 7, 7), tmp_path)


@needs_cc
def test_runtime_broadcast_outer_sum(tmp_path):
    """Broadcasting two runtime tensors ([4,1] + [1,4]) needs nested index loops."""
    inits = {"col": np.array([4, 1], np.int64), "flat": np.array([1, 16], np.int64)}
    nodes = [
        helper.make_node("Reshape", ["obs", "col"], ["c"], name="to_col"),
        helper.make_node("Sub", ["c", "obs"], ["d"], name="outer_diff"),
        helper.make_node("Reshape", ["d", "flat"], ["act"], name="flatten"),
    ]
    check_host(make_model(nodes, inits, 4, 16, batch=1), tmp_path)


@needs_cc
def test_transpose_of_observation(tmp_path):
    inits = {"grid": np.array([1, 2, 3], np.int64), "flat": np.array([1, 6], np.int64)}
    nodes = [
        helper.make_node("Reshape", ["obs", "grid"], ["g"], name="to_grid"),
        helper.make_node("Transpose", ["g"], ["t"], name="swap", perm=[0, 2, 1]),
        helper.make_node("Transpose", ["t"], ["t2"], name="view_only", perm=[1, 0, 2]),  # moves a size-1 dim
        helper.make_node("Reshape", ["t2", "flat"], ["act"], name="back"),
    ]
    check_host(make_model(nodes, inits, 6, 6, batch=1), tmp_path)


# --------------------------------------------------------------------------------------------------
# torch.onnx.export graphs


def torch_export(module, n_obs: int, path) -> onnx.ModelProto:
    torch = pytest.importorskip("torch")
    module.eval()
    torch.onnx.export(
        module,
        (torch.randn(1, n_obs),),
        str(path),
        dynamo=False,  # the TorchScript exporter needs no onnxscript
        input_names=["obs"],
        output_names=["actions"],
        dynamic_axes={"obs": {0: "batch"}, "actions": {0: "batch"}},
        opset_version=17,
    )
    return onnx.load(str(path))


@needs_cc
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("act", ["Tanh", "ReLU", "ELU", "LeakyReLU", "Sigmoid"])
def test_torch_mlp_with_normalization(act, tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)

    class Policy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.randn(20))
            self.register_buffer("std", torch.rand(20) + 0.5)
            layer = getattr(nn, act)
            self.net = nn.Sequential(nn.Linear(20, 32), layer(), nn.Linear(32, 32), layer(), nn.Linear(32, 4))

        def forward(self, x):
            return torch.clamp(self.net((x - self.mean) / self.std), -1.0, 1.0)

    model = torch_export(Policy(), 20, tmp_path / "p.onnx")
    ops = {n.op_type for n in model.graph.node}
    assert {"Sub", "Div", "Gemm", "Clip"} <= ops
    check_host(model, tmp_path)


@needs_cc
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_concat_reshape_flatten(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(1)

    class TwoHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(6, 8)
            self.b = nn.Linear(6, 8)
            self.out = nn.Linear(16, 3)
            self.flat = nn.Flatten()

        def forward(self, x):
            h = torch.cat([torch.tanh(self.a(x)), torch.relu(self.b(x))], dim=-1)
            h = h.reshape(x.shape[0], 4, 4)
            h = self.flat(h)
            return self.out(h.view(x.size(0), -1)) * 0.5

    model = torch_export(TwoHead(), 6, tmp_path / "p.onnx")
    check_host(model, tmp_path)


# --------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("op", ["Softmax", "Sin"])
def test_unsupported_op_names_node_and_writes_nothing(op, tmp_path):
    nodes = [
        helper.make_node("Relu", ["obs"], ["r"], name="ok_relu"),
        helper.make_node(op, ["r"], ["act"], name="the_bad_node"),
    ]
    out = tmp_path / "c"
    with pytest.raises(UnsupportedOnnxError) as info:
        export_onnx_to_c(make_model(nodes, {}, 4, 4), out)
    msg = str(info.value)
    assert "the_bad_node" in msg and op in msg
    assert info.value.node_name == "the_bad_node" and info.value.op_type == op
    assert not out.exists()


def test_lstm_is_unsupported(tmp_path):
    rng = np.random.default_rng(0)
    inits = {"W": rand(rng, 1, 16, 3), "R": rand(rng, 1, 16, 4), "seq": np.array([1, 3], np.int64)}
    nodes = [
        helper.make_node("Reshape", ["obs", "seq"], ["x"], name="seq_shape"),
        helper.make_node("Unsqueeze", ["x", "ax"], ["x3"], name="unsq"),
        helper.make_node("LSTM", ["x3", "W", "R"], ["y"], name="recurrent", hidden_size=4),
        helper.make_node("Reshape", ["y", "flat"], ["act"], name="out"),
    ]
    inits |= {"ax": np.array([1], np.int64), "flat": np.array([1, 4], np.int64)}
    with pytest.raises(UnsupportedOnnxError, match=r"recurrent.*LSTM"):
        generate_c(make_model(nodes, inits, 3, 4, batch=1))


def test_dynamic_observation_dim_is_rejected():
    nodes = [helper.make_node("Relu", ["obs"], ["act"], name="r")]
    model = make_model(nodes, {}, 4, 4, in_dims=["batch", "n_obs"])
    with pytest.raises(UnsupportedOnnxError, match=r"obs.*dynamic"):
        generate_c(model)


def test_static_batch_above_one_is_rejected():
    nodes = [helper.make_node("Relu", ["obs"], ["act"], name="r")]
    with pytest.raises(UnsupportedOnnxError, match="batch"):
        generate_c(make_model(nodes, {}, 4, 4, batch=8))


def test_missing_file_is_a_clear_export_error(tmp_path):
    with pytest.raises(ExportError, match="not found"):
        generate_c(tmp_path / "nope.onnx")


# --------------------------------------------------------------------------------------------------
# Generated code shape


def test_generated_code_has_no_malloc_or_stdio(tmp_path):
    out = tmp_path / "c"
    export_onnx_to_c(gemm_mlp(n_obs=9, hidden=(5,), n_act=2), out)
    text = (out / "policy.c").read_text() + (out / "policy.h").read_text()
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for banned in ("malloc", "calloc", "realloc", "free(", "printf", "FILE", "stdio", "stdlib", "double"):
        assert banned not in code, banned
    includes = re.findall(r"#include\s+(\S+)", code)
    assert includes == ["<math.h>", '"policy.h"']
    assert "static const float" in code
    assert re.search(r"void policy_step\(const float \*obs, float \*action\)", code)
    assert "void policy_reset(void)" in code
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


CONTRACT = {
    "version": 1,
    "robot": "crazyflie",
    "task": "quadrotor-hover",
    "control_rate_hz": 100,
    "observation": {
        "fields": [
            {"name": "position_error", "size": 3, "unit": "m", "frame": "world"},
            {"name": "rot-matrix (body)", "size": 9},
            {"name": "2d_flow", "size": 2},
        ]
    },
    "action": {"fields": [{"name": "motor_command", "size": 4, "low": -1, "high": 1}]},
}


def test_contract_from_metadata_becomes_header_macros(tmp_path):
    model = gemm_mlp(n_obs=14, hidden=(8,), n_act=4)
    helper.set_model_props(model, {"robot_ac_contract": json.dumps(CONTRACT)})
    out = tmp_path / "c"
    export_onnx_to_c(model, out)
    header = (out / "policy.h").read_text()
    for line in (
        "#define ROBOT_AC_POLICY_N_OBS 14",
        "#define ROBOT_AC_POLICY_N_ACT 4",
        "#define ROBOT_AC_POLICY_CONTROL_RATE_HZ 100",
        "#define ROBOT_AC_OBS_POSITION_ERROR_OFFSET 0",
        "#define ROBOT_AC_OBS_POSITION_ERROR_SIZE 3",
        "#define ROBOT_AC_OBS_ROT_MATRIX_BODY_OFFSET 3",
        "#define ROBOT_AC_OBS__2D_FLOW_OFFSET 12",
        "#define ROBOT_AC_ACT_MOTOR_COMMAND_SIZE 4",
        '#define ROBOT_AC_POLICY_ROBOT "crazyflie"',
    ):
        assert line in header


def test_contract_file_yaml_overrides_and_size_mismatch(tmp_path):
    yaml = pytest.importorskip("yaml")
    model = gemm_mlp(n_obs=14, hidden=(8,), n_act=4)
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(CONTRACT | {"control_rate_hz": 250.5}))
    result = generate_c(model, path)
    assert "#define ROBOT_AC_POLICY_CONTROL_RATE_HZ 250.5" in result.header
    bad = CONTRACT | {"action": {"fields": [{"name": "motor_command", "size": 3}]}}
    with pytest.raises(ContractError, match="action fields add up to 3"):
        generate_c(model, bad)


def test_c_identifier_sanitizing():
    assert c_identifier("position error (m)") == "POSITION_ERROR_M"
    assert c_identifier("3d") == "_3D"
    assert c_identifier("***") == "FIELD"


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_c_float_literal_round_trips_float32(value):
    text = c_float(value, paren=False)
    assert text.endswith("f") and any(ch in text for ch in ".e")
    assert np.float32(float(text[:-1])) == np.float32(value)


ACTIVATIONS = ["Tanh", "Relu", "Elu", "Sigmoid", "LeakyRelu", "Identity", "Softsign", "Neg", "Abs"]


@needs_cc
@settings(max_examples=6, deadline=None)
@given(
    widths=st.lists(st.integers(1, 24), min_size=1, max_size=4),
    acts=st.lists(st.sampled_from(ACTIVATIONS), min_size=4, max_size=4),
    n_obs=st.integers(1, 20),
    n_act=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_random_mlp_architectures(widths, acts, n_obs, n_act, seed, tmp_path_factory):
    """Any depth/width mix: exercises buffer reuse, odd sizes and the unrolled/remainder loops."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev, width = [], {}, "obs", n_obs
    for i, h in enumerate([*widths, n_act]):
        inits[f"W{i}"] = rand(rng, width, h, scale=1 / np.sqrt(width))
        inits[f"b{i}"] = rand(rng, h)
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"m{i}"], name=f"mm{i}"))
        last = i == len(widths)
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], ["act" if last else f"z{i}"], name=f"add{i}"))
        if not last:
            nodes.append(helper.make_node(acts[i], [f"z{i}"], [f"h{i}"], name=f"act{i}"))
        prev, width = f"h{i}", h
    check_host(make_model(nodes, inits, n_obs, n_act), tmp_path_factory.mktemp("mlp"), n=200)
