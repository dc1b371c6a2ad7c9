"""Reading and checking calibration logs (CSV with a header row).

Why strict: a system-identification fit happily returns numbers from a broken log (a stuck sensor, a NaN, a
time stamp that jumps back), and those numbers end up in the simulator. Every check here rejects the log with
one line that names the file and the column, before anything is fitted or written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class LogError(ValueError):
    """A log cannot be used; the message names the file and, where there is one, the column."""

    def __init__(self, path: str | Path, column: str | None, problem: str) -> None:
        self.path, self.column, self.problem = str(path), column, problem
        where = f"{path}: column '{column}'" if column else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass
class LogTable:
    """Numeric columns of one CSV log, all the same length."""

    path: Path
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def has(self, name: str) -> bool:
        return name in self.columns

    def get(self, name: str) -> np.ndarray:
        if name not in self.columns:
            raise LogError(self.path, name, f"missing column (the log has {', '.join(self.columns) or 'none'})")
        return self.columns[name]

    def require(self, names: Iterable[str]) -> None:
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise LogError(self.path, missing[0],
                           f"missing column (needs {', '.join(missing)}; the log has {', '.join(self.columns)})")

    def first_present(self, *names: str) -> str:
        """The first of ``names`` the log has; error naming all alternatives otherwise."""
        for n in names:
            if n in self.columns:
                return n
        raise LogError(self.path, names[0], f"missing column (needs one of {', '.join(names)}; "
                                            f"the log has {', '.join(self.columns)})")

    # ----------------------------------------------------------------------------------------------- checks
    def check_time(self, name: str = "time_s", min_duration_s: float = 0.0) -> np.ndarray:
        """Strictly increasing time stamps spanning at least ``min_duration_s``."""
        t = self.get(name)
        dt = np.diff(t)
        bad = np.flatnonzero(dt <= 0)
        if bad.size:
            i = int(bad[0])
            raise LogError(self.path, name, f"time stamps not strictly increasing at data row {i + 2} "
                                            f"({t[i]:.6g} then {t[i + 1]:.6g})")
        if t[-1] - t[0] < min_duration_s:
            raise LogError(self.path, name, f"log too short to identify: spans {t[-1] - t[0]:.3g} s, "
                                            f"needs at least {min_duration_s:g} s")
        return t

    def check_rows(self, min_rows: int, what: str, column: str | None = None) -> None:
        if len(self) < min_rows:
            raise LogError(self.path, column or next(iter(self.columns)),
                           f"log too short to identify {what}: {len(self)} rows, needs at least {min_rows}")

    def check_not_pinned(self, name: str, limit: float | None = None, tolerance_fraction: float = 0.01,
                         what: str = "sensor or motor saturated") -> None:
        """Reject a column stuck at its extreme (``limit`` when given, else its own maximum) too often.

        A clipped load cell, an rpm sensor at its ceiling or a motor command at full scale makes the signal a
        flat line that no longer follows the model; a few percent of such samples bias every fit.
        """
        x = self.get(name)
        if limit is None and float(np.ptp(x)) == 0.0:
            return  # constant everywhere: a flat signal, not a clipped one (callers that need variation check it)
        top = float(np.max(x)) if limit is None else float(limit)
        scale = max(abs(top), 1e-12)
        pinned = int(np.count_nonzero(x >= top - 1e-9 * scale))
        if pinned >= 3 and pinned > tolerance_fraction * len(x):
            raise LogError(self.path, name, f"{what}: {pinned} of {len(x)} samples ({pinned / len(x):.1%}) "
                                            f"pinned at {top:.6g}")

    def check_varies(self, name: str, what: str) -> None:
        x = self.get(name)
        if float(np.ptp(x)) <= 0.0:
            raise LogError(self.path, name, f"constant ({x[0]:.6g}) in every row: nothing to identify {what} from")


def read_csv(path: str | Path, required: Sequence[str] = ()) -> LogTable:
    """Read a CSV log: header row, then numbers; empty, ragged, non-numeric and non-finite data are errors."""
    path = Path(path)
    if not path.is_file():
        raise LogError(path, None, "file not found")
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise LogError(path, None, f"cannot read as CSV: {err}") from err
    rows = [r for r in rows if r and not (len(r) == 1 and not r[0].strip()) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise LogError(path, None, "empty log: no header row and no data")
    header = [h.strip() for h in rows[0]]
    if any(not h for h in header):
        raise LogError(path, None, f"empty column name in the header (column {header.index('') + 1})")
    duplicate = next((h for h in header if header.count(h) > 1), None)
    if duplicate:
        raise LogError(path, duplicate, "column appears twice in the header")
    data = rows[1:]
    if not data:
        raise LogError(path, header[0], "empty log: header only, no data rows")
    try:
        values = np.array(data, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(header):
            raise ValueError("ragged")
    except ValueError:
        values = _parse_slowly(path, header, data)
    return _checked(LogTable(path, {h: values[:, j].copy() for j, h in enumerate(header)}), required)


def _checked(table: LogTable, required: Sequence[str]) -> LogTable:
    table.require(required)
    for name, col in table.columns.items():
        bad = np.flatnonzero(~np.isfinite(col))
        if bad.size:
            raise LogError(table.path, name, f"{bad.size} non-finite value(s) (NaN/inf), first at data row "
                                             f"{bad[0] + 2}")
    return table


def read_log(path: str | Path, required: Sequence[str] = ()) -> LogTable:
    """A CSV file, or a ROS 2 MCAP flight log as written by ``robot_ac.runtime.flight_log`` (folder or .mcap)."""
    path = Path(path)
    bag = path.parent if path.suffix == ".mcap" else path
    if (bag / "metadata.yaml").is_file():
        return read_bag(bag, required)
    return read_csv(path, required)


def read_bag(path: Path, required: Sequence[str] = ()) -> LogTable:
    """Numeric topics of a flight log as one table, on the time stamps of its busiest topic.

    Each ``Float32MultiArray`` topic contributes one column per label (``<topic>/<label>`` when two topics share
    a label); other topics are sampled and held at the base time stamps, from the moment every topic has started.
    """
    from robot_ac.runtime.flight_log import ARRAY_TYPE, FlightLogError, read_flight_log

    try:
        topics = read_flight_log(path)
    except FlightLogError as err:
        raise LogError(path, None, str(err)) from err
    arrays = {name: e for name, e in topics.items()
              if e["type"] == ARRAY_TYPE and isinstance(e["values"], np.ndarray) and e["values"].ndim == 2
              and len(e["labels"]) == e["values"].shape[1] and len(e["t_ns"])}
    if not arrays:
        raise LogError(path, None, "empty log: no numeric topic with one label per value")
    base_name = max(arrays, key=lambda n: len(arrays[n]["t_ns"]))
    t_base = arrays[base_name]["t_ns"]
    start = max(int(e["t_ns"][0]) for e in arrays.values())
    t_base = t_base[t_base >= start]
    counts: dict[str, int] = {}
    for e in arrays.values():
        for label in e["labels"]:
            counts[label] = counts.get(label, 0) + 1
    columns: dict[str, np.ndarray] = {"time_s": (t_base - t_base[0]) / 1e9} if len(t_base) else {}
    for name, e in arrays.items():
        idx = np.searchsorted(e["t_ns"], t_base, side="right") - 1
        for j, label in enumerate(e["labels"]):
            key = label if counts[label] == 1 else f"{name.strip('/')}/{label}"
            columns[key] = e["values"][idx, j].astype(float)
    if not columns or not len(t_base):
        raise LogError(path, None, "empty log: no overlapping samples")
    return _checked(LogTable(path, columns), required)


def _parse_slowly(path: Path, header: list[str], data: list[list[str]]) -> np.ndarray:
    """Cell-by-cell parse, only to say exactly which row and column is broken."""
    values = np.empty((len(data), len(header)))
    for i, row in enumerate(data):
        if len(row) != len(header):
            raise LogError(path, None, f"data row {i + 2} has {len(row)} fields, the header has {len(header)}")
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise LogError(path, header[j], f"not a number at data row {i + 2}: {cell!r}") from None
    return values


def numbered(table: LogTable, prefix: str) -> list[str]:
    """Columns ``<prefix>_0, <prefix>_1, ...`` present in the log, in order, stopping at the first gap."""
    names = []
    while f"{prefix}_{len(names)}" in table.columns:
        names.append(f"{prefix}_{len(names)}")
    return names


def normalized_command(table: LogTable, name: str, pwm_max: float) -> np.ndarray:
    """Command as the fraction ``u`` in [0, 1] of the rpm range: ``pwm / pwm_max`` or ``(a + 1) / 2``.

    The simulator's action ``a`` in [-1, 1] maps linearly to [rpm_min, rpm_max]; ``u = (a + 1) / 2``.
    """
    x = table.get(name)
    if name.startswith("pwm"):
        lo, hi = 0.0, pwm_max
        u = x / pwm_max
    else:
        lo, hi = -1.0, 1.0
        u = (x + 1.0) / 2.0
    outside = np.flatnonzero((x < lo) | (x > hi))
    if outside.size:
        i = int(outside[0])
        raise LogError(table.path, name, f"command {x[i]:.6g} at data row {i + 2} outside [{lo:g}, {hi:g}]")
    return u


def write_csv(path: Path, columns: dict[str, np.ndarray], header_comment: str = "") -> None:
    """Write columns as CSV (used by the synthetic-log generator); atomic via a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    names = list(columns)
    matrix = np.column_stack([np.asarray(columns[n], dtype=float) for n in names])
    with tmp.open("w", newline="") as fh:
        if header_comment:
            for line in header_comment.splitlines():
                fh.write(f"# {line}\n")
        fh.write(",".join(names) + "\n")
        np.savetxt(fh, matrix, delimiter=",", fmt="%.9g")
    tmp.replace(path)
