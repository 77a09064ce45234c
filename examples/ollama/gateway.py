"""A multi-agent LLM gateway: every agent (X-Agent-ID header) gets its own
`ollama serve` process, so context windows and KV caches never mix.

The reference system's Ollama example, in Python, on herd's gateway
(`pool.serve`). Without `ollama` installed (or with --demo) it runs herd's
demo worker instead, so the gateway can be tried anywhere.

Run:   python examples/ollama/gateway.py [--listen 127.0.0.1:8080] [--demo]
Use:   curl -X POST http://127.0.0.1:8080/api/chat -H "X-Agent-ID: agent-42" \\
            -d '{"model": "llama3", "messages": [{"role": "user", "content": "Hello!"}]}'
Check: python examples/ollama/gateway.py --self-test
       (serves on a free port, checks affinity through the gateway, exits)
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import urllib.error
import urllib.request
from typing import Tuple

import herd

AGENT_HEADER = "X-Agent-ID"


def make_pool(demo: bool) -> herd.Pool:
    if not demo:
        # One `ollama serve` per agent, on a port herd picks.
        return herd.Pool(
            ["ollama", "serve"],
            env={"OLLAMA_HOST": "127.0.0.1:{{.Port}}"},
            health_path="/",
            start_timeout=120.0,
            min=1,
            max=10,
            ttl=600.0,
            reuse=True,
        )
    return herd.Pool(herd.demo_command(), min=1, max=10, ttl=600.0)


def request(base: str, path: str, agent: str, body: bytes = b"") -> Tuple[int, bytes]:
    headers = {AGENT_HEADER: agent} if agent else {}
    req = urllib.request.Request(base + path, data=body or None, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def self_test(base: str) -> None:
    """Affinity through the gateway (the demo worker's GET / answers its PID)."""
    pids = {}
    for agent in ["agent-1", "agent-2", "agent-1", "agent-3", "agent-2"]:
        status, body = request(base, "/", agent)
        assert status == 200, (status, body)
        pid = json.loads(body)["pid"]
        assert pids.setdefault(agent, pid) == pid, f"{agent} moved from {pids[agent]} to {pid}"
        print(f"{agent} -> worker pid {pid}")
    assert len(set(pids.values())) == 3, "each agent has its own worker"
    status, body = request(base, "/echo", "agent-1", b"streamed back")
    assert (status, body) == (200, b"streamed back"), (status, body)
    status, _ = request(base, "/", "")
    assert status == 400, status
    print("self-test passed: 3 agents, 3 workers, same agent -> same worker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--demo", action="store_true", help="use herd's demo worker even if ollama is installed")
    parser.add_argument("--self-test", action="store_true", help="check affinity through the gateway and exit")
    args = parser.parse_args()
    demo = args.demo or args.self_test or not shutil.which("ollama")
    listen = "127.0.0.1:0" if args.self_test else args.listen
    with make_pool(demo) as pool, pool.serve(listen, session_header=AGENT_HEADER, acquire_timeout=30.0) as proxy:
        worker = "herd demo worker" if demo else "ollama serve"
        print(f"gateway on {proxy.url}, one {worker} per {AGENT_HEADER}", flush=True)
        if args.self_test:
            self_test(proxy.url)
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        while not stop.wait(1.0):
            pass
        print("stopping: requests in flight get 5 s to finish", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
