"""Render a flight log's main signals to one PNG: position error, velocity, actions, compute time, mode changes.

Why here and not in the CLI: the HIL and sim2sim tools write the same bag schema and can reuse the figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robot_ac.runtime.flight_log import FlightLogError, read_flight_log


def plot_flight_log(bag: str | Path, out: str | Path) -> Path:
    """Write ``out`` (PNG); FlightLogError if the bag has no action topic to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_flight_log(bag)
    if "/action" not in data or not len(data["/action"]["t_ns"]):
        raise FlightLogError(f"{bag}: no /action messages to plot (topics: {sorted(data)})")
    t0 = min(int(v["t_ns"][0]) for v in data.values() if len(v["t_ns"]))

    def seconds(topic: str) -> np.ndarray:
        return (data[topic]["t_ns"] - t0) * 1e-9

    panels = [("/observation", "position error [m]", slice(0, 3), ["x", "y", "z"]),
              ("/observation", "linear velocity [m/s]", slice(12, 15), ["vx", "vy", "vz"]),
              ("/action", "action [normalized]", slice(None), None),
              ("/timing", "compute [us]", slice(0, 1), ["compute"])]
    panels = [p for p in panels if p[0] in data and isinstance(data[p[0]]["values"], np.ndarray)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.4 * len(panels)), sharex=True, squeeze=False)
    transitions = list(zip(seconds("/safety_state"), data["/safety_state"]["values"], strict=True)) \
        if "/safety_state" in data else []
    for ax, (topic, label, cols, names) in zip(axes[:, 0], panels, strict=True):
        values = data[topic]["values"][:, cols]
        for i in range(values.shape[1]):
            ax.plot(seconds(topic), values[:, i], lw=0.8, label=names[i] if names else f"{i}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=7, ncol=4)
        for t, text in transitions:
            color = "red" if "-> safe" in text else "green" if "-> running" in text else "gray"
            ax.axvline(t, color=color, lw=0.8, ls="--")
    axes[-1, 0].set_xlabel("time [s]")
    fig.suptitle(f"flight log {Path(bag).name}")
    shown = transitions[-8:]
    lines = [f"{t:7.2f} s  {text[:110]}" for t, text in shown]
    if len(transitions) > len(shown):
        lines.insert(0, f"... {len(transitions) - len(shown)} earlier transitions")
    fig.tight_layout(rect=(0, 0.02 + 0.018 * len(lines), 1, 1))
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, family="monospace", va="bottom")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
