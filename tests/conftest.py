"""Test-wide settings: loopback-only DDS, passive OpenMP workers, few threads on the 2-core machine."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("CYCLONEDDS_URI", (Path(__file__).parent / "cyclonedds-loopback.xml").resolve().as_uri())
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
