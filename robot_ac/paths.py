"""Where the repository's data folders (``sim/``, ``policies/``, ...) live.

The package is installed editable from the repository, so data folders sit next to it. ``ROBOT_AC_ROOT``
overrides the location for installs that keep the data elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """Root folder that holds ``sim/``, ``policies/``, ``hardware/`` and ``calibration/``."""
    env = os.environ.get("ROBOT_AC_ROOT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent


def sim_dir() -> Path:
    """Robot and task descriptions (YAML)."""
    return repo_root() / "sim"


def robot_file(robot: str) -> Path:
    return sim_dir() / "robots" / f"{robot}.yaml"


def task_file(task: str) -> Path:
    return sim_dir() / "tasks" / f"{task.replace('-', '_')}.yaml"
