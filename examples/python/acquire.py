"""Sessions pinned to worker processes: the same session ID always reaches
the same process, different IDs reach different processes, and state stays
with its session.

Run:  python examples/python/acquire.py        (after: pip install ./bindings/python)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import herd


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def put(url: str, body: bytes) -> None:
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="PUT"), timeout=10).close()


def main() -> None:
    # herd's demo worker: a small HTTP server with per-process state. Any
    # program that serves HTTP on a port works the same way, e.g.
    # ["python3", "-m", "http.server", "{{.Port}}"] with health_path="/".
    with herd.Pool(herd.demo_command(), min=1, max=4, min_idle=1) as pool:
        pool.wait_ready()

        print(f"{'session':<8} {'pid':>8}  {'worker':<6} url")
        for session in ["alice", "bob", "alice", "carol", "bob", "alice"]:
            with pool.acquire(session) as lease:
                identity = json.loads(get(lease.url + "/"))
                assert identity["pid"] == lease.pid
                print(f"{session:<8} {lease.pid:>8}  {lease.worker_id:<6} {lease.url}")

        # In-memory state stays with its session's process.
        with pool.acquire("alice") as lease:
            put(lease.url + "/kv/cart", b"3 apples")
        with pool.acquire("bob") as lease:
            try:
                get(lease.url + "/kv/cart")
                bob_sees = "alice's cart (wrong!)"
            except urllib.error.HTTPError:
                bob_sees = "nothing"
        with pool.acquire("alice") as lease:
            alice_sees = get(lease.url + "/kv/cart").decode()
        print(f"\nalice's cart: {alice_sees!r}; bob's worker sees {bob_sees}")

        stats = pool.stats()
        print(
            f"{stats.sessions} sessions, each on its own process "
            f"({stats.workers.total} workers in all, counting warm spares)"
        )
    print("shut down: every worker process is gone")


if __name__ == "__main__":
    main()
