"""Cortex-M4F check under QEMU mps2-an386, and the ``robot-ac export`` command line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from onnx import helper
from onnx_builders import gemm_mlp, make_model

import robot_ac.export.verify_c as verify_c
from robot_ac.cli import main
from robot_ac.export.onnx_to_c import export_onnx_to_c
from robot_ac.export.verify_c import arm_toolchain_missing, verify

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no host C compiler 'cc' on PATH")


@pytest.fixture(scope="module")
def arm_ready() -> None:
    why = arm_toolchain_missing()
    if why:
        pytest.skip(f"Cortex-M4 QEMU check skipped: {why}")


def test_qemu_cortex_m4_matches_onnxruntime(arm_ready, tmp_path):
    model = gemm_mlp(n_obs=12, hidden=(16, 16), n_act=4, act="Tanh", seed=3)
    out = tmp_path / "c"
    export_onnx_to_c(model, out)
    recorded = np.random.default_rng(9).uniform(-5, 5, size=(20, 12)).astype(np.float32)
    report = verify(model, out, n_random=300, recorded=recorded, host=False, work_dir=tmp_path / "work")
    assert report.qemu is not None, report.qemu_skipped
    assert report.qemu.passed, report.qemu
    assert report.qemu.n_observations == 320
    fig = report.target
    assert fig is not None
    # 12*16 + 16*16 + 16*4 = 512 weights + 36 biases -> at least 2 KiB of flash; scratch >= 2 * 16 floats
    assert 548 * 4 <= fig.flash_bytes < 64 * 1024
    assert fig.ram_static_bytes >= 2 * 16 * 4 and 0 < fig.stack_bytes < 4096
    # ~600 multiply-adds plus 32 tanhf calls: thousands of instructions, not millions
    assert 1_000 < fig.instructions_per_inference < 200_000


def test_l2f_sized_actor_on_cortex_m4_meets_the_budget(arm_ready, tmp_path):
    """Learning to Fly's actor size (146 -> 64 -> 64 -> 4, tanh; 32 past actions) fits the issue's budget too."""
    model = gemm_mlp(n_obs=146, hidden=(64, 64), n_act=4, act="Tanh", seed=5)
    out = tmp_path / "c"
    export_onnx_to_c(model, out)
    report = verify(model, out, n_random=300, host=False, work_dir=tmp_path / "work")
    assert report.qemu is not None and report.qemu.passed, report.qemu
    fig = report.target
    # weights alone are 14,020 floats = 56 KB; budget: 25k instructions, 64 KB flash, 8 KB RAM
    assert fig.instructions_per_inference <= 25_000
    assert 56_000 < fig.flash_bytes <= 64 * 1024
    assert fig.ram_bytes <= 8 * 1024
    assert "robot_ac_gemv8x146(" in (out / "policy.c").read_text()


def test_qemu_subset_keeps_recorded_rows(arm_ready, tmp_path):
    nodes = [helper.make_node("Relu", ["obs"], ["act"], name="r")]
    model = make_model(nodes, {}, 3, 3)
    export_onnx_to_c(model, tmp_path / "c")
    recorded = np.full((5, 3), 7.0, np.float32)
    report = verify(model, tmp_path / "c", n_random=100, recorded=recorded, host=False, max_qemu_observations=10)
    assert report.qemu is not None and report.qemu.passed and report.qemu.n_observations == 10


# --------------------------------------------------------------------------------------------------
# CLI


@pytest.fixture()
def small_onnx(tmp_path):
    path = tmp_path / "policy.onnx"
    path.write_bytes(gemm_mlp(n_obs=8, hidden=(8,), n_act=2).SerializeToString())
    return path


@needs_cc
def test_cli_export_verify_writes_json(small_onnx, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    rec = tmp_path / "rec.npy"
    np.save(rec, np.zeros((3, 8), np.float32))
    argv = ["export", str(small_onnx), "--c", str(tmp_path / "c"), "--verify", "--no-qemu"]
    rc = main([*argv, "--n-random", "500", "--recorded", str(rec), "--json", str(report_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "host cc" in out and "PASS" in out and "SKIPPED" in out
    data = json.loads(report_path.read_text())
    assert data["passed"] and data["host"]["n_observations"] == 503 and data["qemu_skipped"] == "disabled"
    assert (tmp_path / "c" / "policy.c").is_file()


@needs_cc
def test_cli_mismatch_exits_non_zero(small_onnx, tmp_path, capsys, monkeypatch):
    real = verify_c.reference_actions
    monkeypatch.setattr(verify_c, "reference_actions", lambda *a: real(*a) + 1.0)
    rc = main(["export", str(small_onnx), "--c", str(tmp_path / "c"), "--verify", "--no-qemu", "--n-random", "50"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "FAIL" in captured.out
    assert captured.err.strip().splitlines() == [
        "robot-ac export: error: verification failed: C output does not match onnxruntime"
    ]


def test_cli_unsupported_op_is_one_line_error(tmp_path, capsys):
    nodes = [helper.make_node("Softmax", ["obs"], ["act"], name="policy_head", axis=1)]
    path = tmp_path / "soft.onnx"
    path.write_bytes(make_model(nodes, {}, 4, 4).SerializeToString())
    rc = main(["export", str(path), "--c", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "policy_head" in err[0] and "Softmax" in err[0]
    assert not (tmp_path / "c").exists()


def test_cli_missing_checkpoint_is_one_line_error(tmp_path, capsys):
    rc = main(["export", str(tmp_path / "run" / "checkpoint.pt"), "--onnx", str(tmp_path / "p.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and "checkpoint.pt: no such file or run folder" in err[0]
    assert not (tmp_path / "p.onnx").exists()


def test_cli_needs_an_output(small_onnx, capsys):
    assert main(["export", str(small_onnx)]) == 2
    assert "--c OUT_DIR" in capsys.readouterr().err


@needs_cc
def test_missing_arm_toolchain_is_reported_not_fatal(tmp_path, monkeypatch):
    real_which = shutil.which
    monkeypatch.setattr(verify_c.shutil, "which", lambda tool: None if "arm" in tool else real_which(tool))
    model = gemm_mlp(n_obs=5, hidden=(4,), n_act=2)
    export_onnx_to_c(model, tmp_path / "c")
    report = verify(model, tmp_path / "c", n_random=50)
    assert report.passed and report.host is not None and report.qemu is None
    assert "arm-none-eabi-gcc not found" in report.qemu_skipped
    assert "SKIPPED: arm-none-eabi-gcc not found" in verify_c.format_report(report)


@needs_cc
def test_stale_c_code_is_flagged(tmp_path):
    export_onnx_to_c(gemm_mlp(n_obs=6, hidden=(4,), n_act=2, seed=1), tmp_path / "c")
    other = gemm_mlp(n_obs=6, hidden=(4,), n_act=2, seed=2)
    report = verify(other, tmp_path / "c", n_random=50, qemu=False)
    assert not report.passed
    assert any("different ONNX model" in note for note in report.notes)


@needs_cc
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_cli_foreign_rsl_rl_style_onnx_with_contract_file(tmp_path, capsys):
    """Like Isaac Lab's rsl_rl exporter: opset 11, static [1, n_obs] input, ELU actor, no metadata."""
    torch = pytest.importorskip("torch")
    yaml = pytest.importorskip("yaml")
    nn = torch.nn
    torch.manual_seed(4)
    actor = nn.Sequential(nn.Linear(9, 16), nn.ELU(), nn.Linear(16, 16), nn.ELU(), nn.Linear(16, 2)).eval()
    path = tmp_path / "policy.onnx"
    torch.onnx.export(
        actor, (torch.zeros(1, 9),), str(path), dynamo=False, opset_version=11,
        input_names=["obs"], output_names=["actions"], dynamic_axes={},
    )  # fmt: skip
    contract = tmp_path / "contract.yaml"
    contract.write_text(
        yaml.safe_dump(
            {
                "control_rate_hz": 50,
                "observation": {"fields": [{"name": "base_lin_vel", "size": 3}, {"name": "joint_pos", "size": 6}]},
                "action": {"fields": [{"name": "joint_targets", "size": 2}]},
            }
        )
    )
    out = tmp_path / "c"
    argv = ["export", str(path), "--c", str(out), "--contract", str(contract), "--verify", "--no-qemu"]
    assert main([*argv, "--n-random", "300"]) == 0, capsys.readouterr()
    header = (out / "policy.h").read_text()
    assert "#define ROBOT_AC_POLICY_CONTROL_RATE_HZ 50" in header
    assert "#define ROBOT_AC_OBS_JOINT_POS_OFFSET 3" in header
    assert "#define ROBOT_AC_ACT_JOINT_TARGETS_SIZE 2" in header
