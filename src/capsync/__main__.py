"""``python -m capsync`` is the ``capsync`` command."""

import sys

from capsync.cli import main

sys.exit(main())
