"""``python -m robot_ac.cli`` is the ``robot-ac`` command."""

import sys

from robot_ac.cli import main

# Guarded: the training learner process (spawn) imports this module again as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
