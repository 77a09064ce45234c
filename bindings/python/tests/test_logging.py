"""herd's logs reach Python's logging module."""

from __future__ import annotations

import logging

from herd import _herd
from conftest import wait_until


def test_worker_output_is_logged_on_herd_worker(make_pool, caplog):
    with caplog.at_level(logging.INFO, logger="herd"):
        pool = make_pool()  # creating a pool installs forwarding, refreshes the level
        assert _herd._logs_forwarded()
        with pool.acquire("s") as lease:
            pid = lease.pid

        def line():
            return [r for r in caplog.records if r.name == "herd.worker" and f"pid {pid}" in r.getMessage()]

        record = wait_until(line, what="the worker's start-up line")[0]
    assert record.levelno == logging.INFO
    assert "listening on" in record.getMessage() and "stream=stderr" in record.getMessage()


def test_records_below_the_herd_logger_level_are_not_forwarded(make_pool, caplog):
    with caplog.at_level(logging.WARNING, logger="herd"):
        _herd._refresh_log_level()
        pool = make_pool(on_session_end=lambda end: None)
        with pool.acquire("quiet"):
            pass
        # A warning still gets through: the callback error below.
        pool2 = make_pool(on_session_end=lambda end: 1 / 0)
        pool2.acquire("x").release()
        pool2.end_session("x")
        wait_until(lambda: any(r.exc_info for r in caplog.records), what="the callback error")
    assert not [r for r in caplog.records if r.levelno < logging.WARNING]


def test_debug_logging_under_concurrent_use_never_deadlocks(make_pool):
    """herd threads emit records while Python threads hold the GIL and call
    the pool, and a logging handler itself calls the pool: every call
    completes (a deadlock would trip the test timeout)."""
    import threading

    # Without reuse every ended session stops its worker and starts another:
    # records come from runtime threads ("worker ready") and from worker
    # output, while Python threads hold the GIL and call the pool.
    pool = make_pool(max=4, reuse=False)
    seen = []

    class CallsThePool(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(pool.stats().sessions)

    handler = CallsThePool(level=logging.DEBUG)
    logger = logging.getLogger("herd")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    _herd._refresh_log_level()
    try:
        def churn(n: int) -> None:
            for i in range(5):
                with pool.acquire(f"t{n}-{i}", timeout=30):
                    pool.stats()
                pool.end_session(f"t{n}-{i}")

        threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_until(lambda: len(seen) > 10, what="debug records")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        _herd._refresh_log_level()
