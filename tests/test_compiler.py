"""Precompiled functions: compiled once, loaded by later processes, and never reused for another configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

# Run in a fresh interpreter: whether it loaded an artifact or compiled one, and what the function returned.
_CHILD = r"""
import json, sys, warnings
from pathlib import Path
import torch
from robot_ac.compiler import precompile

class Scaler:
    def __init__(self, gain):
        self.gain = torch.tensor(gain)

    def apply(self, x, y):
        return {"sum": torch.sin(x) * self.gain + y.sum(-1, keepdim=True), "max": x.max()}

rows, key, source = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
scaler = Scaler(2.0)
fn = precompile(scaler.apply, key, [source])
x, y = torch.linspace(-1, 1, rows * 3).reshape(rows, 3), torch.ones(rows, 2)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = fn(x, y)
expected = scaler.apply(x, y)
print(json.dumps({"loaded": fn.loaded_from is not None,
                  "equal": bool(torch.allclose(out["sum"], expected["sum"]) and out["max"] == expected["max"]),
                  "warnings": [str(w.message) for w in caught if "robot_ac" in str(w.message)]}))
"""


def _run(tmp_path: Path, rows: int, key: str = "config-a") -> dict:
    source = tmp_path / "traced_code.py"
    if not source.exists():
        source.write_text("# stands for the code the function traces\n")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", _CHILD, str(rows), key, str(source)], capture_output=True,
                            text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_precompiled_function_is_compiled_once_then_loaded_and_never_reused_for_another_configuration(tmp_path):
    first = _run(tmp_path, rows=4)
    assert not first["loaded"] and first["equal"]
    artifacts = list((tmp_path / "cache" / "robot_ac_precompiled").glob("Scaler-apply-*.bin"))
    assert len(artifacts) == 1

    again = _run(tmp_path, rows=4)
    assert again["loaded"] and again["equal"]

    # Other shapes, another key, or edited source code: a new artifact, never the old one run on other inputs.
    assert not _run(tmp_path, rows=5)["loaded"]
    assert not _run(tmp_path, rows=4, key="config-b")["loaded"]
    (tmp_path / "traced_code.py").write_text("# edited\n")
    assert not _run(tmp_path, rows=4)["loaded"]
    assert len(list((tmp_path / "cache" / "robot_ac_precompiled").glob("Scaler-apply-*.bin"))) == 4

    # A damaged artifact is compiled again, with a warning, and the result is still right.
    for artifact in (tmp_path / "cache" / "robot_ac_precompiled").glob("*.bin"):
        artifact.write_bytes(b"not a compiled function")
    damaged = _run(tmp_path, rows=4)
    assert not damaged["loaded"] and damaged["equal"]
    assert any("could not load the precompiled" in w for w in damaged["warnings"])
    assert _run(tmp_path, rows=4)["loaded"]


def test_the_torch_simulator_step_and_the_ppo_loss_are_precompiled_on_a_cpu(monkeypatch):
    from robot_ac.algos.ppo import PPO, PPOConfig
    from robot_ac.compiler import precompile
    from robot_ac.sim.quadrotor.env import QuadrotorEnv

    monkeypatch.setenv("ROBOT_AC_NATIVE_STEP", "0")  # on a CPU the simulator runs its fused C step otherwise
    assert type(QuadrotorEnv(num_envs=4, compile=True)._core).__name__ == "_Precompiled"
    assert type(PPO(PPOConfig(num_envs=4, compile_update=True), 8, 6, 4, 0.0, torch.device("cpu"))._losses
                ).__name__ == "_Precompiled"
    # other devices compile in the process (torch.compile is lazy: no GPU is needed to see which path is taken)
    assert type(precompile(torch.sin, "key", [], device="cuda")).__name__ != "_Precompiled"
    monkeypatch.setenv("ROBOT_AC_PRECOMPILE", "0")  # the switch back to compiling in every process
    assert type(QuadrotorEnv(num_envs=4, compile=True)._core).__name__ != "_Precompiled"
