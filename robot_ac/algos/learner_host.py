"""Where the learner process comes from: a fork of a server that imported torch and its compiler in advance.

Why: a learner started fresh (``spawn``) spent ~6.5 s here before it could update (interpreter, torch, the
compiler's imports, its checks, the compiled loss): ready 11.3 s after launch, while the trainer's first rollout was
ready at 8.6 s. Forked from the server, the same learner was ready at 5.0 s (``runs/exp15/timeline.py``).
Python's ``forkserver`` start method runs one server process that imports the modules below once and forks each
learner from it; the server is started as early as ``robot-ac train`` can (before the trainer itself imports torch),
so that those imports run on the second core while the trainer starts.

Fork is safe here because the server only imports: it runs no torch operation, so there is no OpenMP pool for a
fork to break (importing starts only the BLAS library's thread pool, which handles fork itself). Where the platform
has no ``forkserver`` (Windows), learners start with ``spawn``, as before.

This module imports nothing heavy: it is called before torch is imported.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context

# Imported once by the server, inherited by every learner forked from it.
PRELOAD = ["robot_ac.algos.learner_preload"]


def learner_context() -> multiprocessing.context.BaseContext:
    """The start method for learner processes: ``forkserver`` with the preload where available, else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)  # no effect once the server runs; it ran with this same list
    return context


def start_learner_host() -> None:
    """Start the server now, in the background, so that its imports overlap the caller's (no-op without one)."""
    context = learner_context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
