"""Hardware-in-the-loop with a real exported policy: ONNX MLP -> generated C -> firmware -> ACTION frames
compared with onnxruntime. Host build always; the QEMU Cortex-M4 build when the toolchain is there."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fw_helpers import build, expect, handshake, start_with_pty, stop

from robot_ac.hardware.protocol import Action, Config, Heartbeat, State
from robot_ac.hardware.serial_link import SerialLink

onnx = pytest.importorskip("onnx", reason="onnx is needed to build the test policy")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is the reference for the generated C")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from robot_ac.export.onnx_to_c import export_onnx_to_c  # noqa: E402

N_OBS, HIDDEN, N_ACT = 13, 16, 4


def _mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    inits = {
        "W0": (rng.standard_normal((HIDDEN, N_OBS)) / np.sqrt(N_OBS)).astype(np.float32),
        "b0": (0.1 * rng.standard_normal(HIDDEN)).astype(np.float32),
        "W1": (rng.standard_normal((N_ACT, HIDDEN)) / np.sqrt(HIDDEN)).astype(np.float32),
        "b1": (0.1 * rng.standard_normal(N_ACT)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["obs", "W0", "b0"], ["z0"], transB=1),
        helper.make_node("Tanh", ["z0"], ["h0"]),
        helper.make_node("Gemm", ["h0", "W1", "b1"], ["act"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "hil_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", N_OBS])],
        [helper.make_tensor_value_info("act", TensorProto.FLOAT, ["batch", N_ACT])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ort.InferenceSession]:
    model = _mlp()
    out = tmp_path_factory.mktemp("policy")
    export_onnx_to_c(model, out)
    return out, ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _check(link: SerialLink, session, steps: int) -> list[int]:
    handshake(link, timeout=10.0)
    link.send(Config(True, 0))
    assert expect(link, Heartbeat).armed
    rng = np.random.default_rng(4)
    computes = []
    for _ in range(steps):
        obs = rng.standard_normal(N_OBS).astype(np.float32)
        seq = link.send(State(obs))
        reply = expect(link, Action, timeout=2.0)
        assert reply.state_seq == seq
        want = session.run(None, {"obs": obs[None]})[0][0]
        np.testing.assert_allclose(np.float32(reply.action), want, rtol=1e-5, atol=1e-5)
        computes.append(reply.compute_us)
    return computes


def test_generated_policy_on_host_firmware(exported) -> None:
    policy_dir, session = exported
    proc, pty = start_with_pty([str(build("host", policy_dir / "build_host", policy_dir)), "--pty"])
    try:
        with SerialLink(pty) as link:
            _check(link, session, steps=100)
    finally:
        stop(proc)


def test_generated_policy_on_qemu_cortex_m4(exported) -> None:
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"cannot run the Cortex-M4 build: {', '.join(missing)} not installed")
    policy_dir, session = exported
    elf = build("qemu", policy_dir / "build_qemu", policy_dir)
    cmd = ["qemu-system-arm", "-M", "mps2-an386", "-display", "none", "-monitor", "none",
           "-serial", "pty", "-kernel", str(elf)]
    proc, pty = start_with_pty(cmd)
    try:
        with SerialLink(pty) as link:
            computes = _check(link, session, steps=50)
        print(f"\nQEMU 13-16-4 tanh MLP: policy_step {np.median(computes):.0f} us median (emulated clock)")
    finally:
        stop(proc)
