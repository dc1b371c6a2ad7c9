"""Write the short model card that ships next to a policy bundle in ``policies/``.

    python -m robot_ac.policy.model_card policies/crazyflie_hover/policy.onnx --eval EVAL.json --run RUN_DIR \
        [--sensitivity SENSITIVITY.json]   # from bench/parameter_sensitivity.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from robot_ac.policy.bundle import load_bundle


def sensitivity_section(sensitivity_json: Path) -> list[str]:
    """The card's table of single robots (``bench/parameter_sensitivity.py``): the robot that flies is one point of
    the randomization ranges, and the criterion's population average can hide a weak corner."""
    rows = json.loads(sensitivity_json.read_text())["rows"]
    by_name = {r["robot"]: r for r in rows}
    lines = ["", "## Single robots (criterion start states, noise on, randomization off)", ""]
    if "nominal" in by_name and "randomized (the criterion)" in by_name:
        nominal, population = by_name["nominal"], by_name["randomized (the criterion)"]
        lines += [f"The nominal robot of the robot file scores {nominal['success']:.1%} success "
                  f"({nominal['survival']:.1%} survival) against {population['success']:.1%} over the randomized "
                  f"population. Rows pin one parameter at an end of its range, the others nominal.", ""]
    lines += ["| robot | value | survival | success |", "|---|---|---|---|"]
    for r in rows:
        value = r["value"] if isinstance(r["value"], str) else (
            ", ".join(f"{k} {v:.4g}" for k, v in r["value"].items()) if isinstance(r["value"], dict)
            else f"{r['value']:.4g}")
        lines.append(f"| {r['robot']} | {value} | {r['survival']:.1%} | {r['success']:.1%} |")
    return lines


def model_card(bundle_path: Path, eval_json: Path | None, run_dir: Path | None,
               sensitivity_json: Path | None = None) -> str:
    bundle = load_bundle(bundle_path)
    c = bundle.contract
    lines = [
        f"# {c['robot']} / {c['task']}: policy card",
        "",
        f"- File: `{bundle_path.name}` (one ONNX file: network, observation normalization, action clamp and the "
        f"contract in `metadata_props['robot_ac_contract']`, version {c['version']}).",
        f"- Control rate: {c['control_rate_hz']:g} Hz. Input `obs` [batch, {c['observation']['size']}] float32, output "
        f"`action` [batch, {c['action']['size']}] float32 in [-1, 1].",
        f"- Action history: last {c['action_history']['length']} actions, newest first; at episode start filled with "
        f"{c.get('initial_action')}.",
        f"- Code version {c.get('code_version')}, training config hash {c.get('training_config_hash')}.",
        "",
        "## Observation (policy group, in order)",
        "",
        "| field | size | unit | frame | offset | noise std in training |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {f['name']} | {f['size']} | {f['unit']} | {f['frame']} | {f['offset']} | {f['noise_std']:g} |"
              for f in c["observation"]["fields"]]
    lines += ["", "## Action", "", "| field | size | normalized | physical |", "|---|---|---|---|"]
    lines += [f"| {a['name']} | {a['size']} | [{a['low']:g}, {a['high']:g}] | [{a['physical_low']:g}, "
              f"{a['physical_high']:g}] rpm (linear) |" for a in c["action"]["fields"]]
    if run_dir is not None and (run_dir / "summary.json").is_file():
        s = json.loads((run_dir / "summary.json").read_text())
        cfg = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
        algo = next((line.split(":", 1)[1].strip() for line in cfg.splitlines() if line.startswith("algo:")), "?")
        lines += ["", "## Training", "",
                  f"- `robot-ac train {c['task']} --algo {algo}`; {s['env_steps']:,} environment steps in "
                  f"{s['seconds']:.0f} s of wall-clock where it trained; criterion met at its last evaluation: "
                  f"{s['succeeded']}; shipped actor: {s.get('exported_actor', 'last')}."]
    if eval_json is not None and eval_json.is_file():
        e = json.loads(eval_json.read_text())
        lines += ["", "## Evaluation (success criterion: 1000 episodes, 5 s, randomized, noisy)", "",
                  "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in e.items()]
    if sensitivity_json is not None:
        lines += sensitivity_section(sensitivity_json)
    lines += ["", "## Limits", "",
              "- Trained in robot_ac's batched simulator with the domain randomization of `sim/robots/crazyflie.yaml`; "
              "check it with `robot-ac sim2sim` and HIL before flight, and fly it first in a net.",
              "- The safety filter and watchdog of `robot_ac.runtime` (or the firmware) must wrap it on the robot."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--eval", type=Path, default=None)
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--sensitivity", type=Path, default=None, help="JSON of bench/parameter_sensitivity.py")
    args = parser.parse_args()
    out = args.bundle.parent / "MODEL_CARD.md"
    out.write_text(model_card(args.bundle, args.eval, args.run, args.sensitivity))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
