"""The ``herd`` command line (also ``python -m herd``)."""

from __future__ import annotations

import signal
import sys
from typing import List, Optional

from . import _herd

USAGE = """usage: herd <command> [args...]

commands:
  demo-worker [--port N] [--host ADDR] [--threads N] [--ignore-sigterm]
              run herd's demo worker (an HTTP server with per-process state)
  --version   print herd's version
"""


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the ``herd`` command with ``argv`` (default ``sys.argv[1:]``);
    returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["demo-worker"]:
        # Python's own SIGINT handler would never run while the worker
        # serves (it runs without the GIL): let Ctrl-C end it directly.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        return _herd.demo_worker_main(args[1:])
    if args[:1] in (["--version"], ["-V"]):
        print(f"herd {_herd.__version__}")
        return 0
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(USAGE, end="")
        return 0
    print(USAGE, end="", file=sys.stderr)
    return 2
