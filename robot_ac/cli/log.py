"""``robot-ac log plot BAG``: render a run's flight log (ROS 2 MCAP bag) to PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("log", help="flight logs (ROS 2 MCAP bags written by robot-ac run)")
    sub = p.add_subparsers(dest="log_command", metavar="ACTION")
    plot = sub.add_parser("plot", help="plot position error, velocity, actions, compute time and mode changes",
                          description="Reads the bag directory written by `robot-ac run` (also readable by "
                                      "`ros2 bag` and Foxglove) and writes one PNG.")
    plot.add_argument("bag", help="bag directory (contains metadata.yaml and the .mcap file)")
    plot.add_argument("--out", default=None, help="PNG path (default: <bag>.png beside the bag)")
    plot.set_defaults(func=run_plot)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_plot(args: argparse.Namespace) -> int:
    from robot_ac.runtime.flight_log import FlightLogError
    from robot_ac.runtime.plot import plot_flight_log

    bag = Path(args.bag)
    out = Path(args.out) if args.out else bag.with_name(bag.name + ".png")
    try:
        path = plot_flight_log(bag, out)
    except FlightLogError as err:
        print(f"robot-ac log plot: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
