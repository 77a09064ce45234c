#!/usr/bin/env python3
"""A per-session Python REPL as an HTTP worker for herd.

Each process keeps one namespace in memory; herd pins a session to one
process, so a session's variables live as long as the session does.

    POST /eval   body: Python source   → 200 with the value of the last
                 expression (repr) and anything printed, or 400 with the
                 traceback
    GET  /vars   → the names defined so far, as JSON
    GET  /health → 200

Run by herd with the port in $PORT (or `--port N`).
"""

import ast
import contextlib
import io
import json
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACE: dict = {"__name__": "__session__"}


def evaluate(source: str) -> str:
    """Runs `source`; returns printed output plus the repr of a trailing expression."""
    tree = ast.parse(source, mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tree, "<session>", "exec"), NAMESPACE)
        if last is not None:
            value = eval(compile(last, "<session>", "eval"), NAMESPACE)
            if value is not None:
                print(repr(value))
    return out.getvalue()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, body: str, kind: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/health":
            self._reply(200, "ok")
        elif self.path == "/vars":
            names = sorted(k for k in NAMESPACE if not k.startswith("__"))
            self._reply(200, json.dumps({"vars": names, "pid": os.getpid()}), "application/json")
        else:
            self._reply(404, "not found")

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/eval":
            self._reply(404, "not found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        source = self.rfile.read(length).decode("utf-8", "replace")
        try:
            self._reply(200, evaluate(source))
        except Exception:  # the user's code failed: report, keep serving
            self._reply(400, traceback.format_exc())

    def log_message(self, *args) -> None:  # quiet: herd logs worker output
        pass


def main() -> None:
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else int(os.environ["PORT"])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
