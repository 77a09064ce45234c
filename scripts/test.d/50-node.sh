# Node: builds the herd npm package once (release, into the shared
# CARGO_TARGET_DIR) the way users install it (`npm install`), checks that the committed index.d.ts and index.js are
# what the build generates, runs the node:test suite (which also runs and
# type-checks examples/node), and prints the acquire benchmark.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    echo "the herd npm package needs Node 20 or newer; found $(node --version)" >&2
    exit 1
fi

section "node: npm ci in bindings/node (its install script builds the addon, release)"
cd "$HERD_ROOT/bindings/node"
npm ci --no-audit --no-fund --loglevel=error

# examples/node depends on "herd": "file:../../bindings/node", the way a user
# installs the package; its install script runs again and finds the addon
# built (cargo has nothing to do).
section "node: npm ci in examples/node (herd, typescript, ws) and examples/ollama (herd)"
for example in examples/node examples/ollama; do
    (cd "$HERD_ROOT/$example" && npm ci --no-audit --no-fund --loglevel=error)
done

section "node: node --test"
cd "$HERD_ROOT/bindings/node"
npm test

section "node: benchmark"
node bench/acquire.js --batches 200
