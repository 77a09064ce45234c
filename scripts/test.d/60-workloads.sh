# End to end with real stateful programs: redis-server per session, a
# Python REPL per session (and, with the gateway, browsers).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"
apt_install redis-server python3
# The Debian package starts a system redis on 6379; herd's workers use their
# own ports, so it does not matter, but do not leave it running for nothing.
if command -v systemctl >/dev/null 2>&1; then systemctl stop redis-server >/dev/null 2>&1 || true; fi
cargo test -p herd-workload-tests
