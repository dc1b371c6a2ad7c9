"""The learner's fast start: forked from a preloaded host, compiler checks remembered across processes."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import pytest

from robot_ac.algos.learner_host import learner_context, start_learner_host
from robot_ac.compiler import remembering_successes


def test_a_marker_that_cannot_be_written_costs_only_the_speed_up():
    calls: list[str] = []

    def check(_self, path: str) -> bool:
        calls.append(path)
        return True

    remembered = remembering_successes(check)
    library = str(Path("/nonexistent") / "x.so")
    assert remembered(None, library) and remembered(None, library)
    assert calls == [library, library]


def test_successes_are_remembered_in_a_marker_next_to_the_library(tmp_path):
    calls: list[str] = []

    def check(_self, path: str) -> bool:
        calls.append(path)
        return not path.endswith("broken.so")

    remembered = remembering_successes(check)
    good, bad = str(tmp_path / "good.so"), str(tmp_path / "broken.so")
    assert remembered(None, good) and remembered(None, good)
    assert not remembered(None, bad) and not remembered(None, bad)
    assert calls == [good, bad, bad]  # the success ran once; the failure every time, as torch intends
    assert len(list(tmp_path.glob("good.so.loads-with-torch-*"))) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="no forkserver on Windows: learners are spawned there")
def test_learners_are_forked_from_the_host_not_from_the_trainer():
    """The host imported torch and its compiler once; a learner forked from it starts without doing so again."""
    start_learner_host()
    context = learner_context()
    assert context.get_start_method() == "forkserver"
    parent, child = context.Pipe()
    process = context.Process(target=_report_parent_and_preload, args=(child,))
    process.start()
    parent_pid, preloaded = parent.recv()
    process.join(timeout=30)
    assert parent_pid != multiprocessing.current_process().pid  # the host's fork, not ours
    assert preloaded


def _report_parent_and_preload(conn) -> None:
    import os

    conn.send((os.getppid(), "robot_ac.algos.learner_preload" in sys.modules and "torch._dynamo" in sys.modules))


def test_the_command_line_reads_its_arguments_without_importing_torch():
    """``robot-ac train`` starts the learner host once its arguments are read: before torch, or both would not
    import at once."""
    import subprocess

    code = "import sys; from robot_ac.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_the_load_check_is_wrapped_once_however_often_compile_is_called():
    from torch._inductor import cpu_vec_isa

    from robot_ac.compiler import remember_kernel_load_checks

    remember_kernel_load_checks()
    wrapped = cpu_vec_isa.VecISA._probe_load
    remember_kernel_load_checks()
    assert cpu_vec_isa.VecISA._probe_load is wrapped
    assert getattr(wrapped, "_robot_ac_remembers_loads", False)
