"""``python -m robot_ac.cli`` is the ``robot-ac`` command."""

from robot_ac.cli import entry

# Guarded: a learner process started by ``spawn`` imports this module again as __mp_main__.
if __name__ == "__main__":
    entry()
