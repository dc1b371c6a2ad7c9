"""The observation/action contract: named, ordered fields with size, unit and frame, as data.

A task declares its ``policy`` and ``critic`` groups in YAML; the simulator checks each declared field against
what the robot can provide, and the same declaration travels in the exported policy bundle, so the exporter,
the ROS 2 node and the firmware all build the vector the policy was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robot_ac.config import bounded

CONTRACT_VERSION = 1


@dataclass(frozen=True)
class ObsField:
    """One named slice of an observation vector."""

    name: str
    size: int = bounded(min=1)
    unit: str = ""
    frame: str = ""
    noise_std: float = bounded(0.0, min=0.0, doc="std of additive Gaussian noise; policy group only")
    description: str = ""


@dataclass(frozen=True)
class ActionField:
    """One named slice of the action vector and its map from normalized [-1, 1] to physical units."""

    name: str
    size: int
    unit: str
    low: float
    high: float
    physical_low: float
    physical_high: float
    description: str = ""


@dataclass(frozen=True)
class GroupSpec:
    """An ordered observation group (``policy`` or ``critic``)."""

    name: str
    fields: tuple[ObsField, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields)

    def offsets(self) -> dict[str, tuple[int, int]]:
        """Field name -> (start, end) column range in the group's vector."""
        out, start = {}, 0
        for f in self.fields:
            out[f.name] = (start, start + f.size)
            start += f.size
        return out


@dataclass(frozen=True)
class Contract:
    """Everything a runtime needs to build observations and interpret actions."""

    robot: str
    task: str
    control_rate_hz: float
    groups: dict[str, GroupSpec]
    actions: tuple[ActionField, ...]
    action_history_length: int
    extra: dict = field(default_factory=dict)

    @property
    def action_size(self) -> int:
        return sum(a.size for a in self.actions)

    def to_dict(self) -> dict:
        """JSON-ready form, stored in the ONNX bundle's ``metadata_props``."""
        return {
            "version": CONTRACT_VERSION,
            "robot": self.robot,
            "task": self.task,
            "control_rate_hz": self.control_rate_hz,
            "observation": _group_dict(self.groups["policy"]),
            "critic_observation": _group_dict(self.groups["critic"]) if "critic" in self.groups else None,
            "action": {"size": self.action_size, "fields": [vars(a) | {} for a in self.actions]},
            "action_history": {
                "length": self.action_history_length,
                "layout": "newest_first",
                "field": "action_history",
                "description": "previous normalized actions, most recent first, each action's fields in order",
            },
            **self.extra,
        }


def _group_dict(group: GroupSpec) -> dict:
    offsets = group.offsets()
    return {
        "size": group.size,
        "fields": [
            {"name": f.name, "size": f.size, "unit": f.unit, "frame": f.frame, "offset": offsets[f.name][0],
             "noise_std": f.noise_std, "description": f.description}
            for f in group.fields
        ],
    }
