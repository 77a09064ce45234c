"""A multi-agent LLM gateway: every agent (X-Agent-ID header) gets its own
`ollama serve` process, so context windows and KV caches never mix.

The reference system's Ollama example, in Python. Without `ollama`
installed (or with --demo) it runs herd's demo worker instead, so the
gateway can be tried anywhere.

Run:   python examples/python/ollama_gateway.py [--listen 127.0.0.1:8080] [--demo]
Use:   curl -X POST http://127.0.0.1:8080/api/chat -H "X-Agent-ID: agent-42" \\
            -d '{"model": "llama3", "messages": [{"role": "user", "content": "Hello!"}]}'
Check: python examples/python/ollama_gateway.py --self-test
       (starts the gateway on a free port, checks affinity through it, exits)
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import shutil
import sys
import threading
import urllib.error
import urllib.request
from typing import Tuple

import herd

AGENT_HEADER = "X-Agent-ID"
# Not forwarded: they describe one hop, not the request.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade", "host",
}


def make_pool(demo: bool) -> herd.Pool:
    if not demo and shutil.which("ollama"):
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


def make_handler(pool: herd.Pool) -> type:
    class Gateway(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.forward()

        do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

        def forward(self) -> None:
            agent = self.headers.get(AGENT_HEADER)
            if not agent:
                return self.fail(400, f"missing {AGENT_HEADER} header")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                # One lease per request, held until the response body has
                # been sent: the agent counts as active meanwhile.
                with pool.acquire(agent, timeout=30) as lease:
                    self.relay(lease, body)
            except herd.InvalidSessionId as e:
                self.fail(400, str(e))
            except (herd.AcquireTimeout, herd.PoolExhausted) as e:
                self.fail(503, str(e), retry_after=True)
            except (herd.SpawnError, OSError, http.client.HTTPException) as e:
                self.fail(502, f"worker unavailable: {e}")

        def relay(self, lease: herd.Lease, body: bytes) -> None:
            host, port = lease.address.rsplit(":", 1)
            upstream = http.client.HTTPConnection(host, int(port), timeout=300)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                # Stream (Ollama answers token by token): chunked encoding.
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                    if not chunk:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            finally:
                upstream.close()

        def fail(self, status: int, message: str, retry_after: bool = False) -> None:
            payload = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if retry_after:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Gateway


def serve(pool: herd.Pool, listen: str) -> http.server.ThreadingHTTPServer:
    host, port = listen.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), make_handler(pool))
    server.daemon_threads = True
    return server


def request(base: str, path: str, agent: str, body: bytes = b"") -> Tuple[int, bytes]:
    req = urllib.request.Request(base + path, data=body or None, headers={AGENT_HEADER: agent} if agent else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def self_test(pool: herd.Pool, base: str) -> None:
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
    with make_pool(demo) as pool:
        server = serve(pool, "127.0.0.1:0" if args.self_test else args.listen)
        host, port = server.server_address[:2]
        worker = "herd demo worker" if demo else "ollama serve"
        print(f"gateway on http://{host}:{port}, one {worker} per {AGENT_HEADER}", flush=True)
        if args.self_test:
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                self_test(pool, f"http://{host}:{port}")
            finally:
                server.shutdown()
                server.server_close()
            return 0
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
