"""``python -m psae.cli``: the ``psae`` command."""

import sys

from .commands import main

sys.exit(main())
