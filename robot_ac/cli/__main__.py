"""``python -m robot_ac.cli`` is the ``robot-ac`` command."""

import sys

from robot_ac.cli import main

sys.exit(main())
