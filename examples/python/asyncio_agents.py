"""Many asyncio agents at once, each with its own worker process.

Each agent keeps a counter in its worker's memory and bumps it several
times; the acquires and HTTP calls all run on one event loop, which herd
never blocks.

Run:  python examples/python/asyncio_agents.py        (after: pip install ./bindings/python)
"""

from __future__ import annotations

import asyncio
import json
from typing import Optional, Tuple
from urllib.parse import urlsplit

import herd


async def http(method: str, url: str, body: Optional[bytes] = None) -> Tuple[int, bytes]:
    """A minimal HTTP/1.1 client on asyncio streams (stdlib only)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = body or b""
    writer.write(
        f"{method} {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        payload = dechunk(payload)
    return status, payload


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


async def agent(pool: herd.Pool, name: str, steps: int) -> Tuple[str, int, int]:
    for _ in range(steps):
        async with pool.session(name) as lease:
            status, value = await http("GET", lease.url + "/kv/counter")
            count = int(value) if status == 200 else 0
            await http("PUT", lease.url + "/kv/counter", str(count + 1).encode())
    async with pool.session(name) as lease:
        _, value = await http("GET", lease.url + "/kv/counter")
        _, identity = await http("GET", lease.url + "/")
        return name, json.loads(identity)["pid"], int(value)


async def main() -> None:
    agents = [f"agent-{i}" for i in range(6)]
    async with herd.Pool(herd.demo_command(), min=0, max=len(agents)) as pool:
        results = await asyncio.gather(*(agent(pool, name, steps=5) for name in agents))
        for name, pid, count in results:
            print(f"{name}: worker pid {pid}, counter {count}")
        pids = {pid for _, pid, _ in results}
        assert len(pids) == len(agents), "every agent has its own process"
        assert all(count == 5 for _, _, count in results), "state stayed with each agent"
        print(f"{len(agents)} agents, {len(pids)} processes, no state shared")


if __name__ == "__main__":
    asyncio.run(main())
