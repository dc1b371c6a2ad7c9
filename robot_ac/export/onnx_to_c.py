"""ONNX MLP -> dependency-free C99 (``policy.h`` + ``policy.c``) for microcontrollers.

Works from the ONNX graph, not from torch, so foreign policies (rsl_rl / Isaac Lab ``policy.onnx``) export
the same way as robot_ac's own. See ``onnx_graph`` for what is supported and ``c_codegen`` for the output.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import onnx

from robot_ac.export.c_codegen import c_source, header_source
from robot_ac.export.contract import contract_from_model, contract_macros, load_contract_file
from robot_ac.export.onnx_graph import (
    ExportError,
    PolicyPlan,
    UnsupportedOnnxError,
    build_plan,
    load_model,
)

__all__ = ["CExport", "ExportError", "UnsupportedOnnxError", "export_onnx_to_c", "generate_c"]


@dataclass
class CExport:
    """What an export produced; ``files`` maps file name to path written (empty for dry runs)."""

    plan: PolicyPlan
    contract: dict | None
    header: str
    source: str
    files: dict[str, Path]


def _model_bytes_sha256(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def generate_c(model: onnx.ModelProto | str | Path, contract: dict | str | Path | None = None) -> CExport:
    """Build the C sources in memory; raises UnsupportedOnnxError / ExportError before anything is written."""
    where = str(model) if isinstance(model, str | Path) else "<in-memory model>"
    model = load_model(model)
    if contract is None:
        _check_bundle(model, where)
        contract_dict = contract_from_model(model)
    elif isinstance(contract, dict):
        contract_dict = contract
    else:
        contract_dict = load_contract_file(contract)
    plan = build_plan(model)
    sha = _model_bytes_sha256(model)
    header = header_source(plan, contract_macros(contract_dict, plan.n_obs, plan.n_act), sha)
    source = c_source(plan, sha)
    return CExport(plan, contract_dict, header, source, {})


def _check_bundle(model: onnx.ModelProto, where: str) -> None:
    """A robot_ac bundle (producer robot_ac, contract in the metadata) must pass ``load_bundle``'s checks.

    Foreign ONNX files, even with a hand-added contract, and explicit ``--contract`` files are checked by the
    more tolerant contract reader instead; this catches, e.g., an unknown contract version before any C is
    written.
    """
    from robot_ac.policy.bundle import METADATA_KEY, BundleError, validate_model

    if model.producer_name != "robot_ac" or not any(p.key == METADATA_KEY for p in model.metadata_props):
        return
    try:
        validate_model(model, where)
    except BundleError as err:
        raise ExportError(str(err)) from err


def _write_all_atomic(files: dict[Path, str]) -> None:
    """Write every file to a temp file in its folder first, then rename them all.

    A failure while writing (disk full, permissions) leaves the previous files untouched and no temp files.
    """
    temps: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
        for tmp, path in temps:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise


def export_onnx_to_c(
    model: onnx.ModelProto | str | Path,
    out_dir: str | Path,
    contract: dict | str | Path | None = None,
) -> CExport:
    """Generate ``policy.h``/``policy.c`` into ``out_dir``; ``contract`` overrides the ONNX metadata one."""
    result = generate_c(model, contract)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ExportError(f"cannot create output folder {out}: {err.strerror or err}") from err
    files = {out / "policy.h": result.header, out / "policy.c": result.source}
    try:
        _write_all_atomic(files)
    except OSError as err:
        raise ExportError(f"cannot write C files into {out}: {err.strerror or err}") from err
    result.files = {path.name: path for path in files}
    return result
