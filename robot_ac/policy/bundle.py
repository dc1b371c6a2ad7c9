"""The policy bundle: one self-describing ONNX file (network + observation/action contract).

The graph maps ``obs [batch, n_obs] float32`` to ``action [batch, n_act] float32`` with the observation
normalization and the action limits baked in; ``metadata_props["robot_ac_contract"]`` holds the versioned
contract as JSON, so a runtime can check it builds the vector the policy was trained on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

import robot_ac

METADATA_KEY = "robot_ac_contract"
SUPPORTED_VERSIONS = (1,)


class BundleError(ValueError):
    """A bundle is missing, malformed, or its contract does not add up; the message names the file."""


class _ExportWrapper(nn.Module):
    def __init__(self, actor: nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.actor.act(obs).clamp(-1.0, 1.0)


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def export_bundle(actor: nn.Module, contract: dict, path: str | Path, training_config: dict | None = None) -> Path:
    """Write the deterministic actor and ``contract`` as one ONNX file (atomically: all or nothing)."""
    path = Path(path)
    contract = dict(contract)
    contract["training_config_hash"] = config_hash(training_config or {})
    contract["code_version"] = robot_ac.__version__
    n_obs = int(contract["observation"]["size"])
    wrapper = _ExportWrapper(actor).cpu().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter is deprecated in favour of dynamo, which needs onnxscript; silence the notice
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(wrapper, (torch.zeros(1, n_obs),), str(raw), input_names=["obs"],
                              output_names=["action"], dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}},
                              opset_version=17, dynamo=False)
        model = onnx.load(str(raw))
        del model.metadata_props[:]
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(contract)
        model.producer_name = "robot_ac"
        model.producer_version = robot_ac.__version__
        final = Path(tmp) / "bundle.onnx"
        onnx.save_model(model, str(final), save_as_external_data=False)
        validate_model(model, str(path))
        os.replace(final, path)
    return path


@dataclass
class Bundle:
    path: Path
    contract: dict
    model: onnx.ModelProto

    @property
    def obs_size(self) -> int:
        return int(self.contract["observation"]["size"])

    @property
    def action_size(self) -> int:
        return int(self.contract["action"]["size"])

    def session(self, threads: int = 1):
        """An onnxruntime session, single-threaded by default (as a real-time controller runs it)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(self.model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def torch_policy(self):
        """A batched callable ``obs -> action`` backed by onnxruntime, for evaluation in the simulator."""
        session = self.session(threads=max(1, torch.get_num_threads()))

        def policy(obs: torch.Tensor) -> torch.Tensor:
            out = session.run(["action"], {"obs": obs.detach().cpu().numpy().astype(np.float32)})[0]
            return torch.from_numpy(out).to(obs.device)

        return policy


def load_bundle(path: str | Path) -> Bundle:
    """Read and validate a bundle; raise ``BundleError`` naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such policy bundle")
    if path.stat().st_size == 0:
        raise BundleError(f"{path}: file is empty (an interrupted copy?)")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises DecodeError and others
        raise BundleError(f"{path}: not a readable ONNX file ({err})") from err
    contract = validate_model(model, str(path))
    return Bundle(path, contract, model)


def validate_model(model: onnx.ModelProto, where: str) -> dict:
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise BundleError(f"{where}: no '{METADATA_KEY}' in metadata_props; not a robot_ac bundle "
                          "(for a foreign ONNX pass a contract file)")
    try:
        contract = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise BundleError(f"{where}: contract is not valid JSON ({err})") from err
    version = contract.get("version")
    if version is None:
        raise BundleError(f"{where}: contract has no 'version'")
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(f"{where}: contract version {version!r} unknown; this robot_ac reads {SUPPORTED_VERSIONS}")
    for section in ("observation", "action"):
        block = contract.get(section)
        if not isinstance(block, dict) or "fields" not in block or "size" not in block:
            raise BundleError(f"{where}: contract section '{section}' missing or without fields/size")
        total = sum(int(f.get("size", -1)) for f in block["fields"])
        if total != block["size"]:
            raise BundleError(f"{where}: {section} fields add up to {total}, contract says size {block['size']}")
    rate = contract.get("control_rate_hz")
    if not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
        raise BundleError(f"{where}: control_rate_hz must be a positive number, got {rate!r}")
    graph = model.graph
    dims = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            for v in [*graph.input, *graph.output]}
    if "obs" not in dims or "action" not in dims:
        raise BundleError(f"{where}: graph needs input 'obs' and output 'action', has {sorted(dims)}")
    for name, section in (("obs", "observation"), ("action", "action")):
        if dims[name][-1] != contract[section]["size"]:
            raise BundleError(f"{where}: graph '{name}' has width {dims[name][-1]}, contract {section} size "
                              f"{contract[section]['size']}")
    for init in graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise BundleError(f"{where}: weight '{init.name}' has non-finite values")
    return contract
