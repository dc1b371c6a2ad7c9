"""Flight log: a ROS 2 MCAP bag readable by mcap-ros2-support (what ros2 bag / Foxglove decode), atomic on close,
and `robot-ac log plot` renders it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from robot_ac.cli import main as cli_main
from robot_ac.runtime.flight_log import FlightLog, FlightLogError, read_flight_log


def _write(path):
    with FlightLog(path) as log:
        for i in range(20):
            log.write("/observation", i * 10_000_000, {"data": np.full(149, i, dtype=np.float32)})
            log.write("/action", i * 10_000_000, {"data": [0.1 * i] * 4})
            log.write("/timing", i * 10_000_000, {"data": [50.0 + i, 1.0], "labels": ["compute_us", "running"]})
        log.write("/safety_state", 5_000_000, {"text": "armed -> running: started by operator"})
        assert not path.exists()  # only the staging folder exists while writing
    return path


def test_bag_is_readable_by_mcap_ros2_and_has_ros2_metadata(tmp_path):
    from mcap_ros2.reader import read_ros2_messages

    bag = _write(tmp_path / "flight")
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["storage_identifier"] == "mcap" and meta["message_count"] == 61
    (mcap_file,) = bag.glob("*.mcap")
    assert mcap_file.name == "flight.mcap"
    msgs = list(read_ros2_messages(str(mcap_file)))
    topics = {m.channel.topic: m.schema.name for m in msgs}
    assert topics == {"/observation": "std_msgs/msg/Float32MultiArray", "/action": "std_msgs/msg/Float32MultiArray",
                      "/timing": "std_msgs/msg/Float32MultiArray", "/safety_state": "std_msgs/msg/String"}
    texts = [m.ros_msg.data for m in msgs if m.channel.topic == "/safety_state"]
    assert texts == ["armed -> running: started by operator"]
    timing = [m.ros_msg for m in msgs if m.channel.topic == "/timing"]
    assert [d.label for d in timing[0].layout.dim] == ["compute_us", "running"]
    assert not list(tmp_path.glob(".*partial"))


def test_read_back_and_errors(tmp_path):
    data = read_flight_log(_write(tmp_path / "f"))
    assert data["/observation"]["values"].shape == (20, 149) and data["/observation"]["values"][7, 0] == 7.0
    with pytest.raises(FlightLogError, match="already exists"):
        FlightLog(tmp_path / "f")
    with FlightLog(tmp_path / "g") as log, pytest.raises(FlightLogError, match="needs 'data' or 'text'"):
        log.write("/x", 0, {"value": 1})
    with FlightLog(tmp_path / "h") as log:
        log.write("/x", 0, {"text": "a"})
        with pytest.raises(FlightLogError, match="topic /x is std_msgs/msg/String"):
            log.write("/x", 1, {"data": [1.0]})
    with pytest.raises(FlightLogError, match="not a ROS 2 bag"):
        read_flight_log(tmp_path)


def test_log_plot_cli(tmp_path, capsys):
    bag = _write(tmp_path / "flight")
    assert cli_main(["log", "plot", str(bag)]) == 0
    png = tmp_path / "flight.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert cli_main(["log", "plot", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robot-ac log plot: error: ") and "no metadata.yaml" in err and len(err.splitlines()) == 1
