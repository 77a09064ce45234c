#!/usr/bin/env bash
# Gateway speed: wrk against the demo worker directly, herd's gateway, and
# nginx as a sticky proxy to the same worker (hash $http_x_session_id
# consistent, upstream keepalive), at 1 and 64 connections. Prints
# requests/s, p50 and p99 for each, and the machine.
#
#   bench/proxy.sh                 10 s per run
#   DURATION=30s bench/proxy.sh    longer runs
#   HERD_COMPARE=/path/to/herd bench/proxy.sh
#                                  also measures another herd binary (say,
#                                  a build of main) in the same run, in
#                                  front of its own demo worker
#
# Installs wrk and nginx-light (Debian) if missing; builds herd in release.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"
cd "$HERD_ROOT"

DURATION="${DURATION:-10s}"
SESSION="bench"
apt_install wrk nginx-light curl
cargo build --release -q -p herd-cli
HERD="$CARGO_TARGET_DIR/release/herd"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Waits until $2 (a file) has a line matching $1; prints the match.
wait_line() {
    for _ in $(seq 1 300); do
        if grep -m1 -o "$1" "$2" 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "timed out waiting for '$1' in $2" >&2
    cat "$2" >&2
    return 1
}

# herd in front of one demo worker.
HERD_LOG=warn "$HERD" serve --demo --listen 127.0.0.1:0 --admin 127.0.0.1:0 --min 1 --max 4 \
    >"$work/herd.out" 2>"$work/herd.err" &
pids+=($!)
herd_url="$(wait_line 'http://127.0.0.1:[0-9]*' "$work/herd.out" | head -1)"
admin_url="$(wait_line 'admin listening on http://127.0.0.1:[0-9]*' "$work/herd.out" | grep -o 'http://.*')"
curl -sf -H "X-Session-ID: $SESSION" "$herd_url/" >/dev/null
worker="$(curl -sf "$admin_url/stats" | python3 -c '
import json, sys
rows = json.load(sys.stdin)["worker_rows"]
print(next(r["address"] for r in rows if r["session"] == "'"$SESSION"'"))')"

# Another herd to compare with, if asked for.
cmp_url=""
if [ -n "${HERD_COMPARE:-}" ]; then
    HERD_LOG=warn "$HERD_COMPARE" serve --demo --listen 127.0.0.1:0 --min 1 --max 4 \
        >"$work/compare.out" 2>"$work/compare.err" &
    pids+=($!)
    cmp_pid=$!
    cmp_url="$(wait_line 'http://127.0.0.1:[0-9]*' "$work/compare.out" | head -1)"
    curl -sf -H "X-Session-ID: $SESSION" "$cmp_url/" >/dev/null
fi

# nginx as a sticky proxy to that same worker.
mkdir -p "$work/nginx"
nginx_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    upstream workers {
        hash \$http_x_session_id consistent;
        server $worker;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://workers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering off;
        }
    }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
for _ in $(seq 1 100); do curl -sf -H "X-Session-ID: $SESSION" "http://127.0.0.1:$nginx_port/" >/dev/null && break; sleep 0.05; done

# CPU time used so far by the processes whose PIDs are given, in clock
# ticks: "user system".
cpu_ticks() {
    local user=0 sys=0 pid u s
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        read -r u s < <(awk '{sub(/^.*\) /, ""); print $12, $13}' "/proc/$pid/stat")
        user=$((user + u)); sys=$((sys + s))
    done
    echo "$user $sys"
}

run() { # name url connections proxy-pids...
    local name="$1" url="$2" conns="$3" out threads=$(( $3 > 1 ? 2 : 1 ))
    shift 3
    wrk -t"$threads" -c"$conns" -d2s -H "X-Session-ID: $SESSION" "$url/" >/dev/null # warm-up
    local u0 s0 u1 s1
    read -r u0 s0 < <(cpu_ticks "$@")
    out="$(wrk -t"$threads" -c"$conns" -d"$DURATION" --latency -H "X-Session-ID: $SESSION" "$url/")"
    read -r u1 s1 < <(cpu_ticks "$@")
    local rps p50 p99 total cpu="-" errors
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    total="$(awk '/requests in/ {print $1}' <<<"$out")"
    # The proxy's CPU per request, user + system, in microseconds: steadier
    # than requests/s on a machine shared with other work.
    if [ $# -gt 0 ] && [ "$total" -gt 0 ]; then
        cpu="$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$(getconf CLK_TCK)" -v n="$total" \
            'BEGIN {printf "%.1f+%.1fus", u / hz * 1e6 / n, s / hz * 1e6 / n}')"
    fi
    errors="$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';' || true)"
    printf '%-14s %5s %12s %10s %10s %16s  %s\n' "$name" "$conns" "$rps" "$p50" "$p99" "$cpu" "$errors"
}

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r)"
echo "wrk $DURATION per run, GET / (demo worker JSON), X-Session-ID: $SESSION"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews requests/s; proxy CPU/request less so)"
echo "proxy CPU/req is user+system time of the proxy's processes per request"
herd_pid="${pids[0]}"
nginx_pids() { local master; master="$(cat "$work/nginx/nginx.pid")"; echo "$master $(pgrep -P "$master" | paste -sd' ')"; }
printf '%-14s %5s %12s %10s %10s %16s\n' target conns "requests/s" p50 p99 "proxy CPU/req"
for conns in 1 64; do
    run "worker direct" "http://$worker" "$conns"
    run "herd" "$herd_url" "$conns" "$herd_pid"
    if [ -n "$cmp_url" ]; then run "herd (compare)" "$cmp_url" "$conns" "$cmp_pid"; fi
    # shellcheck disable=SC2046
    run "nginx" "http://127.0.0.1:$nginx_port" "$conns" $(nginx_pids)
done
