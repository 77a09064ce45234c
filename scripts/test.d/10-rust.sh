# Rust: unit tests, integration tests (real worker processes), doc tests.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"
# Sandbox tests must run, not skip, where the test command runs (CI is root).
export HERD_REQUIRE_SANDBOX_TESTS=1
cargo test --workspace --all-targets --exclude herd-workload-tests
cargo test --workspace --doc
