"""Browser isolation through herd's gateway, with Python Playwright clients
(`chromium.connect(..., headers={"X-Session-ID": ...})`) and one Debian
Chromium per session (reuse = false)."""

import os
import signal

import pytest
from playwright.sync_api import sync_playwright

from conftest import chromium_pids, wait_for


@pytest.fixture(scope="module")
def pw():
    with sync_playwright() as p:
        yield p


def visit(pw, gateway, session: str, url: str, store: str | None = None):
    """Connects as `session`, optionally stores a cookie and a localStorage
    value on the page, and returns what the page sees: (localStorage, cookie)."""
    browser = pw.chromium.connect(gateway.url, headers={"X-Session-ID": session})
    try:
        context = browser.contexts[0] if browser.contexts else browser.new_context()
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(url)
        if store is not None:
            page.evaluate("v => { localStorage.setItem('who', v); document.cookie = 'who=' + v; }", store)
        return tuple(page.evaluate("() => [localStorage.getItem('who'), document.cookie]"))
    finally:
        browser.close()  # disconnects; the browser stays with the session


def test_each_session_keeps_its_own_state_across_reconnects(pw, gateway, page_url):
    g = gateway()
    assert visit(pw, g, "alice", page_url, store="alice") == ("alice", "who=alice")
    assert visit(pw, g, "bob", page_url, store="bob") == ("bob", "who=bob")
    # Reconnecting finds the session's own state; never the other's.
    assert visit(pw, g, "alice", page_url) == ("alice", "who=alice")
    assert visit(pw, g, "bob", page_url) == ("bob", "who=bob")
    assert g.worker_pid("alice") != g.worker_pid("bob")


def test_an_ended_session_gets_a_fresh_browser(pw, gateway, page_url):
    g = gateway()
    assert visit(pw, g, "carol", page_url, store="carol") == ("carol", "who=carol")
    first = g.worker_pid("carol")
    g.end_session("carol")
    assert visit(pw, g, "carol", page_url) == (None, ""), "no state survives the session"
    assert g.worker_pid("carol") != first


def test_an_idle_session_ends_after_its_ttl_and_the_next_one_starts_fresh(pw, gateway, page_url):
    g = gateway("--ttl", "2s")
    assert visit(pw, g, "dave", page_url, store="dave") == ("dave", "who=dave")
    wait_for("the idle timeout", lambda: g.stats()["counters"]["sessions_ended"]["idle_timeout"] >= 1)
    assert visit(pw, g, "dave", page_url) == (None, "")


def test_a_killed_browser_ends_its_session_as_crashed_and_the_next_connection_gets_a_new_one(pw, gateway, page_url):
    g = gateway()
    assert visit(pw, g, "erin", page_url, store="erin") == ("erin", "who=erin")
    victim = g.worker_pid("erin")
    os.kill(victim, signal.SIGKILL)
    wait_for("the crash to be seen", lambda: g.stats()["counters"]["sessions_ended"]["crashed"] >= 1)
    assert visit(pw, g, "erin", page_url) == (None, "")
    assert g.worker_pid("erin") != victim


def test_after_shutdown_not_one_chromium_process_is_left(pw, gateway, page_url):
    g = gateway()
    for who in ("f1", "f2", "f3"):
        visit(pw, g, who, page_url, store=who)
    assert len(chromium_pids()) >= 3, "three browsers were running"
    assert g.stop() == 0
    assert chromium_pids() == [], "every Chromium process is gone"


def test_the_rust_gateway_example_isolates_browsers_too(pw, gateway, page_url):
    g = gateway(rust_example=True)
    assert visit(pw, g, "gina", page_url, store="gina") == ("gina", "who=gina")
    assert visit(pw, g, "hugo", page_url) == (None, "")
    assert visit(pw, g, "gina", page_url) == ("gina", "who=gina")
    assert g.stop() == 0
    assert chromium_pids() == []


def test_the_example_clients_as_written_share_a_session_s_browser(gateway):
    """examples/playwright/client.py and client.mjs, run as the README runs
    them: each opens a tab; the session's tabs are still there the next time,
    whichever client connects; another session sees only its own."""
    import subprocess
    import sys

    from conftest import ROOT

    g = gateway()
    env = {**os.environ, "HERD_GATEWAY": g.url}
    example = ROOT / "examples" / "playwright"

    def run(*command: str) -> str:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    assert run(sys.executable, str(example / "client.py"), "alice").endswith(": 1 tab open in this session's browser")
    assert run("node", str(example / "client.mjs"), "alice").endswith(": 2 tabs open in this session's browser")
    assert run("node", str(example / "client.mjs"), "bob").endswith(": 1 tab open in this session's browser")
    assert "'hello from a herd browser'" in run(sys.executable, str(example / "client.py"), "alice")
    assert g.stop() == 0
    assert chromium_pids() == []
