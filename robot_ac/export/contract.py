"""The observation/action contract as it travels with a policy, read defensively.

Only ``control_rate_hz`` and the ``name``/``size`` of each observation and action field matter for C
export; everything else (units, frames, robot...) is documentation and ignored here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import onnx

from robot_ac.export.c_codegen import c_identifier, c_string
from robot_ac.export.onnx_graph import ExportError

METADATA_KEY = "robot_ac_contract"


class ContractError(ExportError):
    """The contract is unreadable or disagrees with the network's input/output sizes."""


@dataclass(frozen=True)
class Field:
    name: str
    size: int
    offset: int


def load_contract_file(path: str | Path) -> dict:
    """Read a contract from JSON or YAML (YAML is a superset of JSON, but JSON errors read better)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ContractError(f"cannot read contract {path}: {err.strerror or err}") from err
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # json/yaml raise their own parse error types
        raise ContractError(f"cannot parse contract {path}: {err}") from err
    if not isinstance(data, dict):
        raise ContractError(f"contract {path} must be a mapping, got {type(data).__name__}")
    return data


def contract_from_model(model: onnx.ModelProto) -> dict | None:
    """The contract embedded by robot_ac's own ONNX export, if any."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                data = json.loads(prop.value)
            except json.JSONDecodeError as err:
                raise ContractError(f"ONNX metadata '{METADATA_KEY}' is not valid JSON: {err}") from err
            if not isinstance(data, dict):
                raise ContractError(f"ONNX metadata '{METADATA_KEY}' must be a JSON object")
            return data
    return None


def fields(contract: dict, section: str) -> list[Field]:
    """``contract[section]['fields']`` as (name, size, offset); tolerant of missing sections."""
    sec = contract.get(section)
    if sec is None:
        return []
    raw = sec.get("fields") if isinstance(sec, dict) else sec  # also accept a bare list
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ContractError(f"contract {section}.fields must be a list")
    out, offset = [], 0
    for i, f in enumerate(raw):
        if not isinstance(f, dict) or "name" not in f:
            raise ContractError(f"contract {section}.fields[{i}] needs a 'name'")
        size = f.get("size", 1)
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ContractError(f"contract {section}.fields[{i}] ('{f['name']}'): size must be a positive int")
        declared = f.get("offset")
        if isinstance(declared, int) and not isinstance(declared, bool) and declared != offset:
            raise ContractError(
                f"contract {section}.fields[{i}] ('{f['name']}'): offset {declared}, "
                f"but the sizes before it add up to {offset}"
            )
        out.append(Field(str(f["name"]), size, offset))
        offset += size
    return out


def control_rate(contract: dict) -> float | None:
    rate = contract.get("control_rate_hz")
    if rate is None:
        return None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise ContractError(f"contract control_rate_hz must be a positive number, got {rate!r}")
    return float(rate)


def contract_macros(contract: dict | None, n_obs: int, n_act: int) -> list[str]:
    """``#define`` lines for policy.h; checks that the field sizes add up to the network's sizes."""
    if not contract:
        return ["", "/* No observation/action contract was given. */"]
    lines = [""]
    for key in ("robot", "task"):
        if isinstance(contract.get(key), str):
            lines.append(f"#define ROBOT_AC_POLICY_{key.upper()} {c_string(contract[key])}")
    if isinstance(contract.get("version"), int) and not isinstance(contract.get("version"), bool):
        lines.append(f"#define ROBOT_AC_POLICY_CONTRACT_VERSION {contract['version']}")
    rate = control_rate(contract)
    if rate is not None:
        value = str(int(rate)) if rate.is_integer() else repr(rate)
        lines.append(f"#define ROBOT_AC_POLICY_CONTROL_RATE_HZ {value}")
    for section, prefix, n in (("observation", "OBS", n_obs), ("action", "ACT", n_act)):
        fs = fields(contract, section)
        if not fs:
            continue
        total = sum(f.size for f in fs)
        if total != n:
            raise ContractError(f"contract {section} fields add up to {total} values but the network has {n}")
        seen: dict[str, str] = {}
        lines.append("")
        for f in fs:
            ident = c_identifier(f.name)
            if ident in seen:
                raise ContractError(
                    f"contract {section} fields '{seen[ident]}' and '{f.name}' map to the same C name {ident}"
                )
            seen[ident] = f.name
            lines.append(f"#define ROBOT_AC_{prefix}_{ident}_OFFSET {f.offset}")
            lines.append(f"#define ROBOT_AC_{prefix}_{ident}_SIZE {f.size}")
    return lines
