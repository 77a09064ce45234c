# Rust: unit tests, integration tests (real worker processes), doc tests.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"
# Sandbox tests must run, not skip, where the test command runs (CI is root).
export HERD_REQUIRE_SANDBOX_TESTS=1
# Every cargo command in scripts/test.d selects the whole workspace, so that
# features unify the same way each time and each crate is built once (a
# command naming one package resolves features anew and rebuilds).
cargo build --workspace --all-targets
cargo test --workspace --all-targets --exclude herd-workload-tests
cargo test --workspace --doc
