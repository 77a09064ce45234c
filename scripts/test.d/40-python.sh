# Python: builds the herd package (release, abi3 wheel, through pip and
# maturin) into a virtualenv, runs its pytest suite — real demo workers,
# the examples in examples/python — and a short run of the acquire
# benchmark (it prints figures; it asserts nothing about speed).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
cd "$HERD_ROOT"

VENV="$CARGO_TARGET_DIR/python-venv"
if [ ! -x "$VENV/bin/pip" ]; then
    rm -rf "$VENV"
    # Debian's python3 needs python3-venv for ensurepip.
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        apt_install python3-venv
        rm -rf "$VENV"
        python3 -m venv "$VENV"
    fi
fi
PY="$VENV/bin/python"

section "python: test tools (pytest, an HTTP and a WebSocket client)"
"$PY" -m pip install -q --disable-pip-version-check pytest pytest-timeout httpx websockets

section "python: pip install ./bindings/python (maturin, release)"
"$PY" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings/python

section "python: pytest"
(cd bindings/python && "$PY" -m pytest -q -p no:cacheprovider tests)

section "python: benchmark (short run; the full one: bindings/python/bench/acquire.py)"
"$PY" bindings/python/bench/acquire.py --batches 30 --batch-size 5000
