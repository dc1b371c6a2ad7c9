"""Flight log of a run as a ROS 2 bag (MCAP storage), written without ROS so ``ros2 bag`` and Foxglove read it.

Why a bag: the same file is replayed by ROS tools on the robot side and plotted by ``robot-ac log plot`` here.
Two fixed schemas keep it small: numeric signals (observation, action, timing) are ``std_msgs/Float32MultiArray``
with the signal's column names in ``layout.dim[*].label``, and text (safety state transitions) is
``std_msgs/String``. The bag is written inside ``.<name>.partial/`` beside ``path`` and moved into place on
close, so ``path`` is never half-written; after a crash the bag inside ``.<name>.partial/`` is still readable.

Writer: ``rosbags`` (its built-in ROS 2 Humble type store); bags from it are readable by ``mcap-ros2-support``
(checked on this kind of machine, see shared/reference/ros2-wire.md).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

ARRAY_TYPE = "std_msgs/msg/Float32MultiArray"
TEXT_TYPE = "std_msgs/msg/String"

_TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
_ARRAY = _TYPESTORE.types[ARRAY_TYPE]
_LAYOUT = _TYPESTORE.types["std_msgs/msg/MultiArrayLayout"]
_DIM = _TYPESTORE.types["std_msgs/msg/MultiArrayDimension"]
_TEXT = _TYPESTORE.types[TEXT_TYPE]


class FlightLogError(ValueError):
    """A flight log cannot be written or read; the message names the file."""


class FlightLog:
    """Context manager writing a ROS 2 MCAP bag directory at ``path``.

    ``write(topic, t_ns, msg)``: ``msg = {"data": array, "labels": [...] (optional)}`` -> Float32MultiArray,
    ``msg = {"text": str}`` -> String. A topic keeps the schema of its first message.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.staging = self.path.parent / f".{self.path.name}.partial"
        self.partial = self.staging / self.path.name
        if self.path.exists() and not overwrite:
            raise FlightLogError(f"{self.path}: flight log already exists (choose another path)")
        self.overwrite = overwrite
        self._writer: Writer | None = None
        self._connections: dict[str, tuple[object, str]] = {}
        self._labels: dict[tuple, list] = {}
        self.messages = 0

    # --------------------------------------------------------------------------------------------- lifecycle
    def open(self) -> FlightLog:
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        try:
            self._writer = Writer(self.partial, version=8, storage_plugin=StoragePlugin.MCAP)
            self._writer.open()
        except Exception as err:  # rosbags raises WriterError and OSError
            raise FlightLogError(f"{self.path}: cannot create flight log ({err})") from err
        return self

    def close(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.close()
        if self.path.exists() and self.overwrite:
            shutil.rmtree(self.path) if self.path.is_dir() else self.path.unlink()
        os.replace(self.partial, self.path)
        self.staging.rmdir()

    def __enter__(self) -> FlightLog:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ write
    def write(self, topic: str, t_ns: int, msg: dict) -> None:
        if "text" in msg:
            self.write_text(topic, t_ns, str(msg["text"]))
        elif "data" in msg:
            self.write_array(topic, t_ns, msg["data"], msg.get("labels"))
        else:
            raise FlightLogError(f"{self.path}: message for {topic} needs 'data' or 'text', has {sorted(msg)}")

    def write_array(self, topic: str, t_ns: int, values, labels: Sequence[str] | None = None) -> None:
        conn = self._connection(topic, ARRAY_TYPE)
        data = np.asarray(values, dtype=np.float32).reshape(-1)
        key = (topic, tuple(labels) if labels is not None else None, data.size)
        dims = self._labels.get(key)
        if dims is None:
            names = list(labels) if labels is not None else [topic.strip("/")]
            dims = [_DIM(label=str(n), size=1 if labels is not None else data.size, stride=1) for n in names]
            self._labels[key] = dims
        msg = _ARRAY(layout=_LAYOUT(dim=dims, data_offset=0), data=data)
        self._put(conn, t_ns, _TYPESTORE.serialize_cdr(msg, ARRAY_TYPE))

    def write_text(self, topic: str, t_ns: int, text: str) -> None:
        conn = self._connection(topic, TEXT_TYPE)
        self._put(conn, t_ns, _TYPESTORE.serialize_cdr(_TEXT(data=text), TEXT_TYPE))

    def _connection(self, topic: str, msgtype: str):
        if self._writer is None:
            raise FlightLogError(f"{self.path}: flight log is not open")
        if not topic.startswith("/"):
            topic = "/" + topic
        entry = self._connections.get(topic)
        if entry is None:
            entry = (self._writer.add_connection(topic, msgtype, typestore=_TYPESTORE), msgtype)
            self._connections[topic] = entry
        elif entry[1] != msgtype:
            raise FlightLogError(f"{self.path}: topic {topic} is {entry[1]}, cannot also write {msgtype}")
        return entry[0]

    def _put(self, conn, t_ns: int, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(conn, int(t_ns), data)
        self.messages += 1


def read_flight_log(path: str | Path) -> dict[str, dict]:
    """Read a bag back: topic -> {"t_ns": int64[n], "values": float32[n, k] or list[str], "labels": [...]}."""
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise FlightLogError(f"{path}: not a ROS 2 bag directory (no metadata.yaml)")
    out: dict[str, dict] = {}
    try:
        with Reader(path) as reader:
            for conn, t_ns, raw in reader.messages():
                msg = _TYPESTORE.deserialize_cdr(raw, conn.msgtype)
                entry = out.setdefault(conn.topic, {"t_ns": [], "values": [], "labels": [], "type": conn.msgtype})
                entry["t_ns"].append(t_ns)
                if conn.msgtype == TEXT_TYPE:
                    entry["values"].append(msg.data)
                else:
                    entry["values"].append(np.asarray(msg.data, dtype=np.float32))
                    entry["labels"] = [d.label for d in msg.layout.dim]
    except FlightLogError:
        raise
    except Exception as err:  # rosbags raises ReaderError and others on a damaged bag
        raise FlightLogError(f"{path}: cannot read flight log ({err})") from err
    for entry in out.values():
        entry["t_ns"] = np.asarray(entry["t_ns"], dtype=np.int64)
        if entry["type"] == ARRAY_TYPE and entry["values"]:
            widths = {v.size for v in entry["values"]}
            if len(widths) == 1:
                entry["values"] = np.stack(entry["values"])
    return out
