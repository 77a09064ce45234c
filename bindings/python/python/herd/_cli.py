"""The ``herd`` command line (also ``python -m herd``): the same command as
the Rust ``herd`` binary.

* ``herd serve [options] -- PROGRAM ARGS...`` runs the gateway: an HTTP and
  WebSocket reverse proxy that sends each session to its own worker process
  (``herd serve --help``).
* ``herd serve --demo`` runs it in front of herd's demo worker, started as
  ``python -m herd demo-worker``: nothing else needs to be installed.
* ``herd demo-worker [flags]`` runs the demo worker.
"""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

from . import _herd


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the ``herd`` command with ``argv`` (default ``sys.argv[1:]``);
    returns the exit code (0 after SIGINT/SIGTERM, 2 for bad flags or
    config, 1 when serving failed)."""
    args = sys.argv[1:] if argv is None else list(argv)
    # herd handles SIGINT/SIGTERM itself (the gateway drains on the first);
    # Python's own SIGINT handler could never run while herd holds the
    # thread without the GIL.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    return _herd.cli_main(args, [sys.executable, "-m", "herd"])
