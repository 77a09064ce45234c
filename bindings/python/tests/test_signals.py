"""Ctrl-C interrupts a blocking acquire."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent(
    """
    import faulthandler, signal, sys, threading, time, herd
    # If the test times out, SIGUSR1 makes every thread's stack show in stderr.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Ctrl-C as a terminal's Python gets it. A Python started with SIGINT
    # ignored (a background job of a non-interactive shell, as CI may run
    # the tests) keeps ignoring it and installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with herd.Pool(herd.demo_command(), max=1, stop_grace=1.0) as pool:
        holder = pool.acquire("holder")

        def announce():
            # Tell the parent once the main thread waits inside acquire.
            while pool.stats().waiting_acquires != 1:
                time.sleep(0.005)
            print("waiting", flush=True)

        threading.Thread(target=announce, daemon=True).start()
        try:
            pool.acquire("blocked", timeout=60)
        except KeyboardInterrupt:
            # The interrupted acquire is cancelled: it leaves the queue.
            deadline = time.monotonic() + 10
            while pool.stats().waiting_acquires and time.monotonic() < deadline:
                time.sleep(0.01)
            print("interrupted", pool.stats().waiting_acquires, flush=True)
            sys.exit(0)
        print("not interrupted", flush=True)
        sys.exit(1)
    """
)


def test_ctrl_c_interrupts_a_blocking_acquire():
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "waiting"
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            # Where is it stuck? Every thread's Python stack, then fail.
            child.send_signal(signal.SIGUSR1)
            try:
                out, err = child.communicate(timeout=5)
            except subprocess.TimeoutExpired as e:
                out, err = e.output, e.stderr
            if isinstance(err, bytes):
                err = err.decode(errors="replace")
            raise AssertionError(f"no exit 20 s after SIGINT; stdout {out!r}; stderr:\n{err}") from None
        elapsed = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, (out, err)
    # The cancelled acquire left the wait queue.
    assert out.split() == ["interrupted", "0"]
    print(f"interrupted {elapsed * 1000:.0f} ms after SIGINT")
