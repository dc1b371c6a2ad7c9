"""ament_python package; installs the top-level launch/ folder (launch files + profile YAML) into share/.

The launch files live in the repository's top-level launch/ so `ros2 launch launch/quadrotor.launch.py` works from
a checkout; installing them here makes `ros2 launch robot_ac_ros quadrotor.launch.py` work too.
"""

import os
from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = "robot_ac_ros"
HERE = Path(__file__).resolve().parent
LAUNCH_DIR = HERE.parents[2] / "launch"  # <repo>/launch, from <repo>/ros_ws/src/robot_ac_ros
# Relative to this file: setuptools' install_data refuses absolute source paths.
launch_files = sorted(os.path.relpath(p, HERE) for p in glob(str(LAUNCH_DIR / "*.launch.py"))
                      + glob(str(LAUNCH_DIR / "*.yaml")))

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", launch_files),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="robot_ac",
    maintainer_email="robot-ac@example.com",
    description="ROS 2 node running robot_ac policy bundles with a safety filter and watchdog",
    license="Apache-2.0",
    entry_points={"console_scripts": [f"policy_node = {PACKAGE}.policy_node:main"]},
)
