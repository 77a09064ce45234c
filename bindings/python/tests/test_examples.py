"""The examples in examples/python run, and do what they say."""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import urllib.request

from conftest import free_port


EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples" / "python"


def run(name: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_acquire_example():
    out = run("acquire.py")
    rows = [line.split() for line in out.splitlines()[1:7]]
    pids = {}
    for session, pid, *_ in rows:
        assert pids.setdefault(session, pid) == pid
    assert len(set(pids.values())) == 3
    assert "alice's cart: '3 apples'; bob's worker sees nothing" in out
    assert "every worker process is gone" in out


def test_asyncio_example():
    out = run("asyncio_agents.py")
    assert "6 agents, 6 processes, no state shared" in out


def test_gateway_example_self_test():
    out = run("../ollama/gateway.py", "--self-test")
    assert "self-test passed" in out


def test_gateway_example_serves_until_ctrl_c():
    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, str(EXAMPLES.parent / "ollama" / "gateway.py"), "--demo", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "gateway on" in gateway.stdout.readline()

        def pid_of(agent: str) -> int:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Agent-ID": agent})
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["pid"]

        first = pid_of("a")
        assert pid_of("b") != first
        assert pid_of("a") == first
        gateway.send_signal(signal.SIGINT)
        assert gateway.wait(timeout=30) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
