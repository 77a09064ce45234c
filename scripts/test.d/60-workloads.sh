# End to end with real stateful programs: a redis-server per session, a
# Python REPL per session, and a Chromium per session behind the gateway
# with Python and Node Playwright clients.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"
apt_install redis-server python3 chromium
# (Debian's package may also start a system redis on 6379; herd's workers
# use ports of their own, so it does not matter.)

section "redis and REPL workers (Rust, through the acquire API)"
cargo test --workspace --test redis --test repl

section "browsers (Python and Node Playwright clients through the gateway)"
cargo build --workspace --all-targets
(cd examples/playwright && npm ci --no-audit --no-fund --loglevel=error)
python3 -m pip install --quiet --disable-pip-version-check playwright==1.65.1 pytest
python3 -m pytest -q tests/workloads/browser
node --test tests/workloads/browser/
