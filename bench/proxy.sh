#!/usr/bin/env bash
# Gateway speed only: the proxy part of the benchmark suite, i.e. wrk against
# the demo worker directly, herd's gateway, nginx and HAProxy (sticky on
# X-Session-ID, upstream keep-alive) at 1, 16, 64 and 256 connections, for
# one session and for 100 sessions over 100 workers. Kept for its old
# name; the suite is bench/run (see BENCHMARKS.md).
#
#   bench/proxy.sh                  5 s per run, median of 3
#   DURATION=30s bench/proxy.sh     longer runs
#   HERD_COMPARE=/path/to/herd bench/proxy.sh
#                                   also measures another herd binary (say,
#                                   a build of main) in the same runs, in
#                                   front of its own demo workers
#   bench/proxy.sh --out DIR        write the results elsewhere than bench/results
set -euo pipefail
if [ -n "${DURATION:-}" ]; then
    BENCH_DURATION="${DURATION%s}"
    export BENCH_DURATION
fi
exec "$(dirname "$0")/run" --only proxy "$@"
