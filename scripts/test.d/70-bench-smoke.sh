# The benchmark suite's smoke run: every part of bench/run (wrk against the
# worker, herd, nginx and HAProxy, also with all of them on one CPU; the
# WebSocket load generator; acquire from Rust, C, Python and Node; cold
# start and scale) with tiny durations
# and the debug build of 10-rust, so that the suite does not rot. It checks
# that each part runs and reports; it asserts nothing about speed. The
# figures: bench/run (see BENCHMARKS.md).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
bench/run --smoke --out "$out"

section "bench: the smoke run's report has every part"
python3 - "$out/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
proxy = {(p["sessions"], p["connections"], p["target"]) for p in r["proxy"]}
want = {(1, c, t) for c in (1, 16) for t in ("direct", "herd", "nginx", "haproxy")}
want |= {(100, c, t) for c in (1, 16) for t in ("herd", "nginx", "haproxy")}
assert proxy == want, f"proxy rows: {sorted(proxy)}"
for p in r["proxy"]:
    assert p["errors"] == 0 and p["rps"] > 0, p
one_cpu = {p["target"]: p for p in r["proxy_one_cpu"]}
assert set(one_cpu) == {"direct", "herd", "nginx", "haproxy"}, sorted(one_cpu)
for p in one_cpu.values():
    assert p["errors"] == 0 and p["rps"] > 0 and p["mean_us"] > 0, p
assert {w["target"] for w in r["websocket"]} == {"direct", "herd"}
assert all(w["messages_per_s"] > 0 for w in r["websocket"]), r["websocket"]
for key in ("rust_bound_acquire_release_ns", "c_acquire_release_cpu_ns", "python_acquire_release_ns",
            "node_acquire_release_ns", "rust_new_session_warm_ns"):
    assert r["acquire"][key] > 0, key
assert r["spawn"]["scale"][0]["errors"] == 0 and r["spawn"]["cold_acquire_ms"] > 0, r["spawn"]
print("results.json: proxy (also on one CPU), websocket, acquire and spawn figures present, 0 errors")
PY
