"""Fixtures for the browser-isolation tests: herd's gateway in front of one
headless Chromium per session (examples/playwright/browser_worker.mjs), and
a local page to store state on."""

import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HERD = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "herd"
WORKER = ROOT / "examples" / "playwright" / "browser_worker.mjs"


def chromium_pids() -> list[int]:
    """Every Chromium process on the host (counted in /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip().startswith("chromium"):
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def wait_for(what: str, condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


RUST_GATEWAY = HERD.parent / "playwright_gateway"


class Gateway:
    """`herd serve` running the browser worker, with an admin listener
    (or, with `rust_example=True`, examples/rust's playwright_gateway)."""

    def __init__(self, *extra: str, rust_example: bool = False):
        if rust_example:
            assert RUST_GATEWAY.exists(), f"build the example first: {RUST_GATEWAY}"
            command = [str(RUST_GATEWAY), "--listen", "127.0.0.1:0"]
        else:
            assert HERD.exists(), f"build the herd command first: {HERD}"
            command = [str(HERD), "serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                       "--no-reuse", "--min", "0", "--max", "4", "--health-path", "/",
                       "--start-timeout", "90s", "--pids-limit", "unlimited", *extra,
                       "--", "node", str(WORKER)]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.rust_example = rust_example
        self.url = self.admin = None
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for("the gateway to listen", lambda: self.url and (self.admin or rust_example), 60)

    def _read(self):
        for line in self.proc.stdout:
            self._lines.append(line)
            if m := re.search(r"gateway listening on http://(\S+)", line):
                self.url = f"ws://{m.group(1)}/"
            if m := re.search(r"admin listening on (http://\S+)", line):
                self.admin = m.group(1)

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.admin}/stats", timeout=10) as r:
            return json.load(r)

    def end_session(self, session: str) -> None:
        req = urllib.request.Request(f"{self.admin}/sessions/{session}", method="DELETE")
        urllib.request.urlopen(req, timeout=10).read()

    def worker_pid(self, session: str) -> int:
        rows = [r for r in self.stats()["worker_rows"] if r["session"] == session]
        assert rows, f"no worker is bound to {session}"
        return rows[0]["pid"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the gateway did not stop on SIGTERM:\n" + "".join(self._lines[-20:]))
        return self.proc.returncode


@pytest.fixture
def gateway():
    gateways: list[Gateway] = []

    def start(*extra: str, rust_example: bool = False) -> Gateway:
        g = Gateway(*extra, rust_example=rust_example)
        gateways.append(g)
        return g

    yield start
    for g in gateways:
        g.stop()


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"<!doctype html><title>herd browser test</title><p>state lives here</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def page_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
