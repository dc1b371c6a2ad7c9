"""ROS 2 shell around robot_ac.runtime.PolicyController."""
