# Shared helpers for herd's scripts. Source it: `. scripts/lib.sh`.

HERD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export HERD_ROOT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HERD_ROOT/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The scripts build each artifact once; incremental state would only cost
# disk (gigabytes) and time. Set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Installs Debian packages that are missing (apt-get update first, once).
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    if [ ! -e /tmp/.herd-apt-updated ]; then
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        touch /tmp/.herd-apt-updated
    fi
    echo "installing Debian packages: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

section() {
    printf '\n\033[1m== %s\033[0m\n' "$*"
}
