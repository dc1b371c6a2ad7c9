"""Typed YAML configuration with errors that name the file and the key.

Configs are plain dataclasses. ``load_yaml_config`` reads a file and ``from_mapping`` checks it against the
dataclass: unknown keys, wrong types, values out of bounds and ranges with min > max are rejected at load time,
so a typo never silently falls back to a default (a complaint users make of config systems built on inheritance).
Bounds live in field metadata: ``field(metadata={"min": 0.0, "exclusive_min": True})``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or mapping is invalid; the message names the source and the key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        where = f"{source}: key '{key}'" if key else source
        super().__init__(f"{where}: {problem}")


@dataclasses.dataclass(frozen=True)
class Range:
    """Closed interval [low, high] sampled uniformly per episode; written as ``[low, high]`` in YAML."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def bounded(default: Any = dataclasses.MISSING, *, min: float | None = None, max: float | None = None,
            exclusive_min: bool = False, doc: str = "", **kwargs: Any) -> Any:
    """A dataclass field with numeric bounds checked at load time."""
    metadata = {"min": min, "max": max, "exclusive_min": exclusive_min, "doc": doc}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def load_yaml_config(cls: type[T], path: str | Path) -> T:
    """Read ``path`` and build ``cls`` from it; any problem raises ``ConfigError`` naming file and key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "", "file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(str(path), "", f"not valid YAML: {err}") from err
    if data is None:
        data = {}
    return from_mapping(cls, data, source=str(path))


def from_mapping(cls: type[T], data: Any, source: str = "<config>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested mapping, validating every key."""
    if not isinstance(data, dict):
        raise ConfigError(source, prefix, f"expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = _join(prefix, str(unknown[0]))
        raise ConfigError(source, key, f"unknown key (known keys: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        key = _join(prefix, name)
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise ConfigError(source, key, "required key is missing")
            continue
        value = _convert(hints[name], data[name], source, key)
        _check_bounds(field, value, source, key)
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except (ValueError, TypeError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(source, prefix, str(err)) from err
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(source, _join(prefix, getattr(err, "key", "")), str(err)) from err
    return obj


def to_mapping(obj: Any) -> Any:
    """Inverse of ``from_mapping``: plain YAML-serialisable data, used to save the resolved config of a run."""
    if isinstance(obj, Range):
        return [obj.low, obj.high]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    return obj


class KeyedValueError(ValueError):
    """A ``validate()`` failure that knows which key (relative to the dataclass) is at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, source, key)
        errors = []
        for option in non_none:
            try:
                return _convert(option, value, source, key)
            except ConfigError as err:
                errors.append(err.problem)
        raise ConfigError(source, key, "; ".join(errors))
    if hint is Range:
        if not (isinstance(value, (list, tuple)) and len(value) == 2):
            raise ConfigError(source, key, f"expected a range [min, max], got {value!r}")
        low, high = (_convert(float, v, source, key) for v in value)
        if low > high:
            raise ConfigError(source, key, f"range min {low} > max {high}")
        return Range(low, high)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, source, key)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(source, key, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(source, key, f"must be finite, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, key, f"expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, key, f"expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(source, key, f"expected a string, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(source, key, f"expected a list, got {value!r}")
        item_hint = args[0] if args else Any
        items = [_convert(item_hint, v, source, f"{key}[{i}]") for i, v in enumerate(value)]
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(items)
            if len(items) != len(args):
                raise ConfigError(source, key, f"expected {len(args)} values, got {len(items)}")
            pairs = enumerate(zip(args, value, strict=True))
            return tuple(_convert(h, v, source, f"{key}[{i}]") for i, (h, v) in pairs)
        return items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(source, key, f"expected a mapping, got {value!r}")
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _convert(value_hint, v, source, _join(key, str(k))) for k, v in value.items()}
    return value


def _check_bounds(field: dataclasses.Field, value: Any, source: str, key: str) -> None:
    meta = field.metadata
    values = [value.low, value.high] if isinstance(value, Range) else [value]
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        low, high = meta.get("min"), meta.get("max")
        if low is not None:
            if meta.get("exclusive_min") and v <= low:
                raise ConfigError(source, key, f"must be > {low}, got {v}")
            if v < low:
                raise ConfigError(source, key, f"must be >= {low}, got {v}")
        if high is not None and v > high:
            raise ConfigError(source, key, f"must be <= {high}, got {v}")
