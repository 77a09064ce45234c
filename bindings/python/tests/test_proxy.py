"""pool.serve(): the gateway, with a real HTTP client and a WebSocket client."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from websockets.sync.client import connect

import herd
from conftest import pid_alive, wait_until


@pytest.fixture
def served(make_pool):
    """``served(**serve_kwargs)`` → (pool, proxy) on a free port; the proxy
    is stopped before the pool shuts down."""
    proxies = []

    def start(pool_kwargs=None, **serve_kwargs):
        pool = make_pool(**(pool_kwargs or {"max": 4}))
        proxy = pool.serve("127.0.0.1:0", **serve_kwargs)
        proxies.append(proxy)
        return pool, proxy

    yield start
    for proxy in proxies:
        proxy.stop(grace=1.0)


def test_requests_with_the_same_session_header_reach_the_same_process(served):
    pool, proxy = served()
    with httpx.Client(base_url=proxy.url, timeout=30) as client:
        def pid(session: str) -> int:
            response = client.get("/", headers={"X-Session-ID": session})
            assert response.status_code == 200, response.text
            return response.json()["pid"]

        alice = pid("alice")
        assert pid("bob") != alice
        assert pid("alice") == alice
        # State stays with the session, through the gateway.
        client.put("/kv/note", content=b"hi", headers={"X-Session-ID": "alice"})
        assert client.get("/kv/note", headers={"X-Session-ID": "alice"}).content == b"hi"
        assert client.get("/kv/note", headers={"X-Session-ID": "bob"}).status_code == 404
    assert pool.stats().sessions == 2
    assert proxy.address == f"127.0.0.1:{proxy.port}" and "127.0.0.1" in repr(proxy)


def test_a_request_without_a_session_id_gets_400(served):
    _, proxy = served()
    response = httpx.get(proxy.url + "/", timeout=10)
    assert response.status_code == 400


def test_cookie_query_and_path_prefix_sources(served):
    _, proxy = served(session_header=None, session_cookie="sid", session_query="session", session_path_prefix="/s/")
    with httpx.Client(base_url=proxy.url, timeout=30) as client:
        by_cookie = client.get("/", headers={"Cookie": "theme=dark; sid=carol"}).json()["pid"]
        by_query = client.get("/", params={"session": "carol"}).json()["pid"]
        by_path = client.get("/s/carol/").json()["pid"]
        assert by_cookie == by_query == by_path
        # The prefix and ID are stripped before the worker sees the path.
        assert client.put("/s/carol/kv/k", content=b"v").status_code in (200, 201, 204)
        assert client.get("/kv/k", params={"session": "carol"}).content == b"v"
        # Without a header source, the header is not a session ID.
        assert client.get("/", headers={"X-Session-ID": "carol"}).status_code == 400


def test_no_worker_in_time_is_503_with_retry_after(served):
    pool, proxy = served(pool_kwargs={"max": 1}, acquire_timeout=0.2)
    holder = pool.acquire("holder")
    response = httpx.get(proxy.url + "/", headers={"X-Session-ID": "newcomer"}, timeout=10)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    holder.release()


def test_bodies_stream_both_ways(served):
    _, proxy = served()
    payload = bytes(range(256)) * 4096  # 1 MiB
    response = httpx.post(proxy.url + "/echo", content=payload, headers={"X-Session-ID": "s"}, timeout=30)
    assert response.status_code == 200 and response.content == payload


def test_websocket_echo_and_its_session_stays_active(served):
    pool, proxy = served()
    with connect(f"ws://{proxy.address}/ws", additional_headers={"X-Session-ID": "ws-session"}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=10) == b"\x00\x01"
        # The open WebSocket is a lease on its session.
        assert pool.stats().open_leases == 1
        row = next(r for r in pool.stats().worker_rows if r.session == "ws-session")
        assert row.state == "bound"
    wait_until(lambda: pool.stats().open_leases == 0, what="the WebSocket's lease to be released")


def test_a_websocket_and_http_of_one_session_reach_one_process(served):
    _, proxy = served()
    pid = httpx.get(proxy.url + "/", headers={"X-Session-ID": "s"}, timeout=30).json()["pid"]
    with connect(f"ws://{proxy.address}/", additional_headers={"X-Session-ID": "s"}) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
        assert httpx.get(proxy.url + "/", headers={"X-Session-ID": "s"}, timeout=30).json()["pid"] == pid


def test_concurrent_requests_of_many_sessions(served):
    pool, proxy = served(pool_kwargs={"max": 6})
    results = {}
    errors = []

    def client(n: int) -> None:
        try:
            with httpx.Client(base_url=proxy.url, timeout=30) as c:
                pids = {c.get("/", headers={"X-Session-ID": f"s{n}"}).json()["pid"] for _ in range(5)}
            results[n] = pids
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(len(p) == 1 for p in results.values())
    assert len({next(iter(p)) for p in results.values()}) == 6


def test_stop_closes_the_listener_and_leaves_the_pool_running(served):
    pool, proxy = served()
    with proxy:
        assert httpx.get(proxy.url + "/", headers={"X-Session-ID": "s"}, timeout=30).status_code == 200
    assert proxy.stopped
    with pytest.raises(httpx.ConnectError):
        httpx.get(proxy.url + "/", headers={"X-Session-ID": "s"}, timeout=5)
    proxy.stop()  # again: nothing
    with pool.acquire("s") as lease:
        assert pid_alive(lease.pid)


def test_admin_routes(served):
    pool, proxy = served(admin_listen="127.0.0.1:0")
    httpx.get(proxy.url + "/", headers={"X-Session-ID": "s"}, timeout=30)
    admin = f"http://{proxy.admin_address}"
    assert httpx.get(admin + "/stats", timeout=10).json()["sessions"] == 1
    assert "herd" in httpx.get(admin + "/metrics", timeout=10).text
    assert httpx.delete(admin + "/sessions/s", timeout=10).status_code in (200, 204)
    wait_until(lambda: pool.stats().sessions == 0, what="the session to end")


def test_bad_serve_arguments_are_invalid_config(make_pool):
    pool = make_pool()
    with pytest.raises(herd.InvalidConfig, match="listen"):
        pool.serve("not an address")
    with pytest.raises(herd.InvalidConfig, match="session_sources"):
        pool.serve("127.0.0.1:0", session_header=None)
    pool.shutdown()
    with pytest.raises(herd.PoolClosed):
        pool.serve("127.0.0.1:0")


def test_the_herd_command_serves_the_demo_with_python_workers():
    exe = pathlib.Path(sys.executable).with_name("herd")
    gateway = subprocess.Popen(
        [str(exe), "serve", "--demo", "--listen", "127.0.0.1:0", "--min", "1", "--max", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = gateway.stdout.readline()
        assert "gateway listening on http://" in line, line + gateway.stderr.read()
        url = line.split("listening on ", 1)[1].strip()
        first = httpx.get(url + "/", headers={"X-Session-ID": "alice"}, timeout=30).json()["pid"]
        assert httpx.get(url + "/", headers={"X-Session-ID": "bob"}, timeout=30).json()["pid"] != first
        assert httpx.get(url + "/", headers={"X-Session-ID": "alice"}, timeout=30).json()["pid"] == first
        # The demo workers are this Python running `-m herd demo-worker`.
        with open(f"/proc/{first}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[1:4] == [b"-m", b"herd", b"demo-worker"]
        assert os.path.samefile(argv[0], sys.executable)
        gateway.send_signal(signal.SIGINT)
        assert gateway.wait(timeout=30) == 0
        assert not pid_alive(first)
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
