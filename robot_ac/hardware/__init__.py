"""Serial link to a device running the exported policy (protocol, ``SerialLink``) and hardware-in-the-loop runs.

``robot_ac.hardware.hil`` (simulator in the loop) is imported on its own: it pulls in torch and the simulator.
"""

from robot_ac.hardware.protocol import FaultCode, FrameDecoder, LinkCounters, MsgType
from robot_ac.hardware.serial_link import LinkError, PortAbsentError, PortBusyError, SerialLink

__all__ = [
    "FaultCode",
    "FrameDecoder",
    "LinkCounters",
    "LinkError",
    "MsgType",
    "PortAbsentError",
    "PortBusyError",
    "SerialLink",
]
