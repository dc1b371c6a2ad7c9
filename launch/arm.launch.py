"""The policy_node with the arm profile (arm.yaml beside this file).

`ros2 launch robot_ac_ros arm.launch.py policy:=/path/policy.onnx`, or from a checkout
`ros2 launch launch/arm.launch.py policy:=...`; other arguments as in robot_ac.launch.py.
"""

import os

from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

from launch import LaunchDescription

HERE = os.path.dirname(os.path.abspath(__file__))


def generate_launch_description():
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(os.path.join(HERE, "robot_ac.launch.py")),
                                 launch_arguments={"profile": "arm"}.items()),
    ])
