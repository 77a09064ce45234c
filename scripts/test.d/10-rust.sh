# Rust: unit tests, integration tests (real worker processes), doc tests.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"
cargo test --workspace --all-targets
cargo test --workspace --doc
