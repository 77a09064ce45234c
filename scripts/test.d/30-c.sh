# C: libherd (shared and static), include/herd.h, its install with
# pkg-config, the C examples, the C tests (plain and under valgrind) and a
# smoke run of the C benchmark. Builds libherd once (debug).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"

apt_install gcc g++ make pkg-config valgrind curl

work="$(mktemp -d)"
gateway_pid=""
cleanup() {
    [ -n "$gateway_pid" ] && kill -9 "$gateway_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -g)

section "C: build libherd and the demo worker"
# (--workspace: the same build as 10-rust's, so nothing is rebuilt.)
cargo build --workspace --all-targets
export HERD_DEMO_WORKER="$CARGO_TARGET_DIR/debug/herd-demo-worker"

section "C: include/herd.h is what cbindgen generates now"
cargo test --workspace --test header

section "C: the header compiles as C11 and as C++17, warnings as errors"
gcc "${CFLAGS[@]}" -Iinclude -c tests/c/header_check.c -o "$work/header_c.o"
g++ -std=c++17 -Wall -Wextra -Werror -pedantic -Iinclude -x c++ -c tests/c/header_check.c -o "$work/header_cxx.o"

section "C: install into a prefix; build against it with pkg-config"
make -s -C herd-ffi install PREFIX="$work/prefix" PROFILE=debug
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
[ "$(pkg-config --modversion herd)" = "$(sed -n 's/^#define HERD_VERSION "\(.*\)"/\1/p' include/herd.h)" ]
# shellcheck disable=SC2046  # pkg-config output is meant to be split
cc "${CFLAGS[@]}" examples/c/acquire.c $(pkg-config --cflags --libs herd) -o "$work/acquire"
# shellcheck disable=SC2046
cc "${CFLAGS[@]}" -pthread examples/c/gateway.c $(pkg-config --cflags --libs herd) -o "$work/gateway"
# shellcheck disable=SC2046
cc "${CFLAGS[@]}" -pthread tests/c/herd_test.c $(pkg-config --cflags --libs herd) -o "$work/herd_test"
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror -pthread bench/c_acquire.c $(pkg-config --cflags --libs herd) -o "$work/c_acquire"
# The static library links with the .pc's private libraries alone.
# shellcheck disable=SC2046
cc "${CFLAGS[@]}" examples/c/acquire.c $(pkg-config --cflags herd) "$work/prefix/lib/libherd.a" \
    $(pkg-config --static --libs-only-l herd | sed 's/-lherd\b//') -o "$work/acquire_static"
export LD_LIBRARY_PATH="$work/prefix/lib"

section "C: examples"
"$work/acquire" "$HERD_DEMO_WORKER" | tee "$work/acquire.out"
grep -q "session alice -> worker" "$work/acquire.out"
"$work/acquire_static" "$HERD_DEMO_WORKER" >/dev/null
! ldd "$work/acquire_static" | grep -q libherd

# The gateway: same session -> same worker, 400 without an ID, and SIGTERM
# stops it with every worker gone.
"$work/gateway" "$HERD_DEMO_WORKER" 127.0.0.1:0 >"$work/gateway.out" &
gateway_pid=$!
for _ in $(seq 600); do
    grep -q "listening on" "$work/gateway.out" && break
    kill -0 "$gateway_pid" || break
    sleep 0.05
done
address="$(sed -n 's|.*listening on http://||p' "$work/gateway.out")"
[ -n "$address" ] || { cat "$work/gateway.out"; exit 1; }
pid_of() { curl -fsS -H "X-Session-ID: $1" "http://$address/" | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }
alice="$(pid_of alice)" bob="$(pid_of bob)" alice_again="$(pid_of alice)"
echo "gateway $address: alice -> pid $alice, bob -> pid $bob, alice again -> pid $alice_again"
[ -n "$alice" ] && [ -n "$bob" ] && [ "$alice" = "$alice_again" ] && [ "$alice" != "$bob" ]
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$address/")" = 400 ]
kill -TERM "$gateway_pid"
wait "$gateway_pid"
gateway_pid=""
! kill -0 "$alice" 2>/dev/null && ! kill -0 "$bob" 2>/dev/null

section "C: tests"
"$work/herd_test"

section "C: tests under valgrind memcheck"
# Only definite leaks count as errors: threads herd leaves parked at exit
# (the process-wide spawner, runtime threads finishing) show as "possibly
# lost". Forked children (herd's shims, the fork test's child) are quiet.
valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --child-silent-after-fork=yes --log-file="$work/valgrind.log" "$work/herd_test"
grep -E "definitely lost|ERROR SUMMARY" "$work/valgrind.log"
if grep -q "definitely lost: [1-9]" "$work/valgrind.log"; then
    cat "$work/valgrind.log"
    exit 1
fi

section "C: benchmark (smoke run; figures: make -C herd-ffi bench)"
"$work/c_acquire" --quick
