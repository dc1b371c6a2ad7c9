"""Clear one-line errors: a robot with no pybullet backend, a missing URDF, a URDF that disagrees with the YAML."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from robot_ac.cli import main
from robot_ac.paths import sim_dir
from robot_ac.policy import export_bundle, load_bundle
from robot_ac.sim2sim.reference_policy import LinearPolicy


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["sim2sim", *args, "--no-progress"])
    err = capsys.readouterr().err
    return code, err


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("robot-ac sim2sim: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def copy_sim_tree(root: Path, with_urdf: bool) -> None:
    """A repository root holding the crazyflie YAML and task, with or without the URDF."""
    shutil.copytree(sim_dir() / "tasks", root / "sim" / "tasks")
    (root / "sim" / "robots").mkdir(parents=True)
    shutil.copy(sim_dir() / "robots" / "crazyflie.yaml", root / "sim" / "robots")
    if with_urdf:
        shutil.copy(sim_dir() / "robots" / "crazyflie.urdf", root / "sim" / "robots")


def test_robot_without_pybullet_backend(tmp_path: Path, lqr_bundle: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    copy_sim_tree(tmp_path, with_urdf=True)
    (tmp_path / "sim" / "robots" / "arm6.yaml").write_text("name: arm6\nkind: arm\n")
    contract = dict(load_bundle(lqr_bundle).contract, robot="arm6")
    bundle = export_bundle(LinearPolicy(*_zero_weights()), contract, tmp_path / "arm.onnx")
    monkeypatch.setenv("ROBOT_AC_ROOT", str(tmp_path))
    code, err = run_cli(capsys, str(bundle), "--engine", "pybullet", "--out", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2
    assert "'arm6'" in line and "'arm'" in line and "no pybullet backend" in line and "quadrotor" in line
    assert not (tmp_path / "out").exists()


def test_unknown_engine(lqr_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, str(lqr_bundle), "--engine", "mujoco", "--out", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2 and "mujoco" in line and "pybullet" in line


def test_missing_urdf_beside_the_robot_file(tmp_path: Path, lqr_bundle: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    copy_sim_tree(tmp_path, with_urdf=False)
    monkeypatch.setenv("ROBOT_AC_ROOT", str(tmp_path))
    code, err = run_cli(capsys, str(lqr_bundle), "--episodes", "1", "--out", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2
    assert str(tmp_path / "sim" / "robots" / "crazyflie.urdf") in line and "not found" in line
    assert not (tmp_path / "out").exists()


def test_missing_urdf_given_on_the_command_line(tmp_path: Path, lqr_bundle: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "cf.urdf"
    code, err = run_cli(capsys, str(lqr_bundle), "--urdf", str(missing), "--out", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2 and str(missing) in line and "not found" in line


def test_urdf_whose_mass_disagrees_with_the_robot_file(tmp_path: Path, lqr_bundle: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    heavy = tmp_path / "heavy.urdf"
    heavy.write_text((sim_dir() / "robots" / "crazyflie.urdf").read_text().replace('value="0.027"', 'value="0.03"'))
    code, err = run_cli(capsys, str(lqr_bundle), "--urdf", str(heavy), "--out", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2 and str(heavy) in line and "mass" in line and "0.027" in line


def test_unreadable_urdf(tmp_path: Path, lqr_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.urdf"
    broken.write_text("<robot name='x'><link")
    code, err = run_cli(capsys, str(lqr_bundle), "--urdf", str(broken), "--out", str(tmp_path / "out"))
    line = one_line_error(err)
    assert code == 2 and str(broken) in line


def test_unknown_effect_and_missing_bundle(tmp_path: Path, lqr_bundle: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, str(lqr_bundle), "--effects", "drag,wind")
    assert code == 2 and "'wind'" in one_line_error(err)
    code, err = run_cli(capsys, str(tmp_path / "none.onnx"))
    assert code == 2 and "none.onnx" in one_line_error(err)


def _zero_weights():
    import numpy as np

    return np.zeros((4, 149)), np.zeros(4)  # the LQR fixture's 32-action contract
