"""Benchmark: ``pool.acquire(id)`` + ``release()`` on a bound session, from
Python. Goal: at most 1.5 µs per pair (median).

Run:  python bindings/python/bench/acquire.py [--batches 200] [--batch-size 10000]

Prints the median, p10 and p90 of the time per pair over batches, for the
explicit form and the ``with`` form. Build the package in release mode
first (``pip install ./bindings/python`` does).
"""

from __future__ import annotations

import argparse
import statistics
import time

import herd


def per_pair(batches: int, batch_size: int, body) -> list:
    samples = []
    for _ in range(batches):
        start = time.perf_counter_ns()
        body(batch_size)
        samples.append((time.perf_counter_ns() - start) / batch_size)
    return samples


def report(name: str, samples: list) -> float:
    samples = sorted(samples)
    median = statistics.median(samples)
    p10 = samples[len(samples) // 10]
    p90 = samples[len(samples) * 9 // 10]
    print(f"{name:<34} median {median / 1000:6.3f} µs   p10 {p10 / 1000:6.3f} µs   p90 {p90 / 1000:6.3f} µs")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description="acquire + release on a bound session")
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()

    with herd.Pool(herd.demo_command(), min=1, max=2) as pool:
        pool.acquire("bench").release()  # bind the session
        acquire = pool.acquire

        def explicit(n: int) -> None:
            for _ in range(n):
                acquire("bench").release()

        def with_block(n: int) -> None:
            for _ in range(n):
                with acquire("bench"):
                    pass

        explicit(args.batch_size)  # warm up
        median = report("acquire(id) + release()", per_pair(args.batches, args.batch_size, explicit))
        report("with acquire(id):", per_pair(args.batches, args.batch_size, with_block))
        stats = pool.stats()
        assert stats.counters.sessions_bound == 1 and stats.open_leases == 0
    goal = 1500
    print(f"goal: median <= {goal / 1000:.1f} µs per pair: {'met' if median <= goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
