"""Identification results: estimates with 95% intervals, saved as YAML plus a Markdown report and PNG plots.

Why one format for every step: ``robot-ac calibrate apply`` reads any mix of result files, and a person reads the
same numbers in the report. Outputs go to a temporary folder first and are moved into place only when all of them
exist, so a rejected input or a failed plot leaves nothing behind.
"""

from __future__ import annotations

import datetime as _dt
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FORMAT = "robot_ac_calibration"
STEPS = ("thrust", "motor", "hover", "imu", "latency")


class ResultError(ValueError):
    """A result file cannot be used; the message names the file and the key."""

    def __init__(self, path: str | Path, key: str, problem: str) -> None:
        where = f"{path}: key '{key}'" if key else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass
class Estimate:
    """One identified quantity and its 95% confidence interval."""

    value: float
    low: float
    high: float
    unit: str
    note: str = ""

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": float(self.value), "ci95": [float(self.low), float(self.high)],
                               "unit": self.unit}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class CalibrationResult:
    """What one ``robot-ac calibrate <step>`` found in one log."""

    step: str
    source: str
    estimates: dict[str, Estimate]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "step": self.step, "source": self.source,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "estimates": {k: v.to_dict() for k, v in self.estimates.items()},
                "details": _plain(self.details)}

    def table(self) -> str:
        """Fixed-width text table of the estimates (printed by the CLI and put in the report)."""
        rows = [("quantity", "value", "95% interval", "unit")]
        for name, e in self.estimates.items():
            rows.append((name, f"{e.value:.6g}", f"[{e.low:.6g}, {e.high:.6g}]", e.unit))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _plain(obj: Any) -> Any:
    """YAML-safe plain data: numpy scalars and arrays become floats and lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _plain(obj.tolist())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    return obj


def write_result(result: CalibrationResult, out: Path, figures: dict[str, Any] | None = None) -> list[Path]:
    """Write ``out`` (YAML), ``<stem>.md`` and ``<stem>_<figure>.png``; all or nothing."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = figures or {}
    stem = out.stem
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=out.parent))
    try:
        names = {out.name: None, f"{stem}.md": None}
        for key, fig in figures.items():
            png = f"{stem}_{key}.png"
            fig.savefig(staging / png, dpi=110)
            plt.close(fig)
            names[png] = None
        (staging / out.name).write_text(yaml.safe_dump(result.to_dict(), sort_keys=False))
        images = "\n".join(f"![{k}]({stem}_{k}.png)" for k in figures)
        (staging / f"{stem}.md").write_text(
            f"# Calibration: {result.step}\n\nSource log: `{result.source}`\n\n```\n{result.table()}\n```\n\n"
            f"Details (noise levels, residuals, per-event values) are in `{out.name}`.\n\n{images}\n")
        written = []
        for name in names:
            target = out.parent / name
            (staging / name).replace(target)
            written.append(target)
        return written
    finally:
        for fig in figures.values():
            plt.close(fig)
        shutil.rmtree(staging, ignore_errors=True)


def load_result(path: str | Path) -> CalibrationResult:
    """Read a result YAML written by ``write_result``; malformed files raise ``ResultError``."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(path, "", "file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ResultError(path, "", f"not valid YAML: {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ResultError(path, "format", f"not a calibration result (expected format: {FORMAT})")
    step = data.get("step")
    if step not in STEPS:
        raise ResultError(path, "step", f"unknown step {step!r} (known: {', '.join(STEPS)})")
    raw = data.get("estimates")
    if not isinstance(raw, dict):
        raise ResultError(path, "estimates", "expected a mapping of estimates")
    estimates = {}
    for name, e in raw.items():
        key = f"estimates.{name}"
        try:
            value = float(e["value"])
            low, high = (float(x) for x in e["ci95"])
        except (TypeError, KeyError, ValueError) as err:
            raise ResultError(path, key, "expected value: number and ci95: [low, high]") from err
        if not all(math.isfinite(x) for x in (value, low, high)) or not low <= value <= high:
            raise ResultError(path, key, f"need finite low <= value <= high, got {value} in [{low}, {high}]")
        estimates[name] = Estimate(value, low, high, str(e.get("unit", "")), str(e.get("note", "")))
    return CalibrationResult(step, str(data.get("source", "")), estimates, data.get("details") or {})
