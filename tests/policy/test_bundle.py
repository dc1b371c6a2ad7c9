"""The policy bundle: ONNX vs torch parity, contract round trip, and every way a bundle can be bad.

Each bad bundle must fail in ``load_bundle`` with a ``BundleError`` naming the file and the problem, and in
``robot-ac export BAD.onnx --c DIR`` with one line on stderr and no ``DIR`` written.
"""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from robot_ac.algos.networks import DeterministicActor
from robot_ac.cli import main
from robot_ac.policy import BundleError, export_bundle, load_bundle
from robot_ac.policy.bundle import METADATA_KEY
from robot_ac.sim.quadrotor.env import QuadrotorEnv


@pytest.fixture(scope="module")
def env() -> QuadrotorEnv:
    return QuadrotorEnv("quadrotor-hover", num_envs=64, seed=3)


def trained_like_actor(env: QuadrotorEnv, seed: int = 0) -> DeterministicActor:
    """The L2F-sized actor with the statistics and output scale a trained one has (not the ~0 fresh head)."""
    torch.manual_seed(seed)
    actor = DeterministicActor(
        env.observation_size("policy"), 4, [64, 64], "tanh", action_offset=env.hover_action, output_gain=1.0)
    obs = [env.reset(seed=seed)["policy"]]
    for _ in range(20):
        obs.append(env.step(torch.rand(env.num_envs, 4) * 0.6 - 0.3 + env.hover_action).observations["policy"])
    actor.normalizer.update(torch.cat(obs))
    return actor.eval()


@pytest.fixture(scope="module")
def actor(env) -> DeterministicActor:
    return trained_like_actor(env)


@pytest.fixture(scope="module")
def bundle_path(actor, env, tmp_path_factory):
    return export_bundle(actor, env.contract.to_dict(), tmp_path_factory.mktemp("bundle") / "policy.onnx")


def test_onnxruntime_matches_torch_actor(actor, env, bundle_path):
    rng = np.random.default_rng(0)
    sim_obs = [env.reset(seed=7)["policy"]]
    for _ in range(30):
        sim_obs.append(env.step(torch.rand(env.num_envs, 4) * 2 - 1).observations["policy"])
    mean, std = actor.normalizer.mean.numpy(), actor.normalizer.std.numpy()
    wide = mean + std * rng.standard_normal((2000, 53)) * np.exp(rng.uniform(np.log(0.25), np.log(30), (2000, 1)))
    obs = np.concatenate([torch.cat(sim_obs).numpy(), wide, np.zeros((1, 53))]).astype(np.float32)
    with torch.no_grad():
        expected = actor.act(torch.from_numpy(obs)).numpy()
    got = load_bundle(bundle_path).session().run(["action"], {"obs": obs})[0]
    assert got.shape == expected.shape == (len(obs), 4)
    assert np.abs(got - expected).max() <= 1e-5
    assert np.abs(expected).max() > 0.9, "the test should reach the clamp"
    assert np.all(np.abs(got) <= 1.0) and np.isfinite(got).all()


def test_contract_travels_with_the_graph(bundle_path, env):
    bundle = load_bundle(bundle_path)
    contract = env.contract.to_dict()
    assert bundle.obs_size == 53 and bundle.action_size == 4
    for key in ("version", "robot", "task", "control_rate_hz", "observation", "action", "action_history"):
        assert bundle.contract[key] == json.loads(json.dumps(contract[key])), key
    assert len(bundle.contract["training_config_hash"]) == 16 and bundle.contract["code_version"]
    names = [i.name for i in bundle.model.graph.input], [o.name for o in bundle.model.graph.output]
    assert names == (["obs"], ["action"])


# --------------------------------------------------------------------------------------------------
# Bad bundles


def _rewrite(path, change) -> bytes:
    model = onnx.load(str(path))
    change(model)
    return model.SerializeToString()


def _set_contract(model: onnx.ModelProto, edit) -> None:
    prop = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    contract = json.loads(prop.value)
    edit(contract)
    prop.value = json.dumps(contract)


def _drop_contract(model: onnx.ModelProto) -> None:
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def _version(c: dict) -> None:
    c["version"] = 99


def _obs_size(c: dict) -> None:  # fields and size agree with each other, not with the graph's 53 inputs
    c["observation"]["fields"][-1]["size"] += 4
    c["observation"]["size"] += 4


def _fields_sum(c: dict) -> None:
    c["observation"]["size"] = 44


def _nan_weight(model: onnx.ModelProto) -> None:
    init = next(i for i in model.graph.initializer if i.name.endswith("net.2.weight"))
    values = numpy_helper.to_array(init).copy()
    values[3, 5] = np.nan
    init.CopyFrom(numpy_helper.from_array(values, init.name))


def _garbage(data: bytes) -> bytes:
    return bytes([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + os.urandom(200)


BAD = {
    "corrupted": (lambda p: _garbage(p.read_bytes()), "not a readable ONNX file", "cannot read ONNX model"),
    "truncated": (lambda p: p.read_bytes()[: len(p.read_bytes()) // 2], "not a readable ONNX file",
                  "cannot read ONNX model"),
    "empty": (lambda p: b"", "file is empty", "file is empty"),
    "missing contract": (lambda p: _rewrite(p, _drop_contract), "no 'robot_ac_contract'", None),
    "unknown version": (lambda p: _rewrite(p, lambda m: _set_contract(m, _version)), "contract version 99 unknown",
                        "contract version 99 unknown"),
    "size vs graph": (lambda p: _rewrite(p, lambda m: _set_contract(m, _obs_size)),
                      "graph 'obs' has width 53, contract observation size 57",
                      "graph 'obs' has width 53, contract observation size 57"),
    "fields vs size": (lambda p: _rewrite(p, lambda m: _set_contract(m, _fields_sum)),
                       "observation fields add up to 53, contract says size 44",
                       "observation fields add up to 53, contract says size 44"),
    "non-finite weight": (lambda p: _rewrite(p, _nan_weight), "weight 'actor.net.2.weight' has non-finite values",
                          "weight 'actor.net.2.weight' has non-finite values"),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_bundle_is_rejected_by_name_and_writes_no_c(kind, bundle_path, tmp_path, capsys):
    make, load_message, export_message = BAD[kind]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(make(bundle_path))
    with pytest.raises(BundleError) as info:
        load_bundle(bad)
    assert str(bad) in str(info.value) and load_message in str(info.value)
    out = tmp_path / "c"
    rc = main(["export", str(bad), "--c", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    if export_message is None:  # a foreign ONNX without contract: C export is allowed, with sizes only
        assert rc == 0 and (out / "policy.c").is_file()
        return
    assert rc == 2 and len(err) == 1 and err[0].startswith("robot-ac export: error: ")
    assert export_message in err[0] and str(bad) in err[0]
    assert not out.exists()


def test_missing_or_folder_path_is_named(tmp_path):
    for path in (tmp_path / "nope.onnx", tmp_path):
        with pytest.raises(BundleError, match="no such policy bundle") as info:
            load_bundle(path)
        assert str(path) in str(info.value)


def test_failed_export_leaves_previous_bundle_untouched(actor, env, bundle_path, tmp_path):
    target = tmp_path / "policy.onnx"
    target.write_bytes(bundle_path.read_bytes())
    before = target.read_bytes()
    broken = trained_like_actor(env, seed=1)
    with torch.no_grad():
        broken.net[2].weight[0, 0] = float("inf")
    with pytest.raises(BundleError, match="non-finite"):
        export_bundle(broken, env.contract.to_dict(), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.onnx"]  # no temp files left behind
