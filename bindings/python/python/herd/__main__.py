"""``python -m herd``: the same as the ``herd`` command."""

import sys

from ._cli import main

sys.exit(main())
