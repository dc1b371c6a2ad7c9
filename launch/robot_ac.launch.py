"""Launch the robot_ac policy_node with a profile: `ros2 launch robot_ac_ros robot_ac.launch.py profile:=arm
policy:=/path/policy.onnx` (or `ros2 launch launch/robot_ac.launch.py ...` from a checkout).

The profile YAML (ROS 2 parameter-file format) is looked up beside this file, so the same launch file works from
the repository's launch/ folder and from the installed share/robot_ac_ros/launch/.
"""

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription

HERE = os.path.dirname(os.path.abspath(__file__))
PROFILES = ("quadrotor", "quadrotor_px4", "arm", "humanoid")


def _node(context, *args, **kwargs):
    profile = LaunchConfiguration("profile").perform(context)
    profile_file = profile if profile.endswith((".yaml", ".yml")) else os.path.join(HERE, f"{profile}.yaml")
    if not os.path.isfile(profile_file):
        raise RuntimeError(f"profile {profile!r}: no file {profile_file} (known: {', '.join(PROFILES)})")
    overrides = {
        "policy": LaunchConfiguration("policy").perform(context),
        "profile_file": profile_file,
        "rate_hz": float(LaunchConfiguration("rate_hz").perform(context)),
        "auto_arm": LaunchConfiguration("auto_arm").perform(context).lower() in ("1", "true", "yes"),
        "log_dir": LaunchConfiguration("log_dir").perform(context),
    }
    return [Node(package="robot_ac_ros", executable="policy_node", name="policy_node", output="screen",
                 parameters=[profile_file, overrides])]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("profile", default_value="quadrotor", description=f"one of {PROFILES} or a YAML path"),
        DeclareLaunchArgument("policy", description="policy bundle (.onnx)"),
        DeclareLaunchArgument("rate_hz", default_value="0.0", description="control rate; 0: profile, then bundle"),
        DeclareLaunchArgument("auto_arm", default_value="false", description="arm and start at the first state"),
        DeclareLaunchArgument("log_dir", default_value="flight_logs", description="flight log folder; '' for none"),
        OpaqueFunction(function=_node),
    ])
