"""robot_ac: sim-to-real asymmetric actor-critic control stack."""

__version__ = "0.1.0"
