#!/usr/bin/env bash
# Prints the path of wrk (the HTTP load generator `make bench` measures the
# read routes with), installing Debian's `wrk` package the first time.
#
# Looked up, in order, at $PANORAMA_BENCH_WRK, then PATH. Everything but the
# path goes to stderr, so callers can capture stdout. Works unattended
# (CI=true, no stdin).
set -euo pipefail

log() { echo "ensure-wrk: $*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

find_wrk() {
  if [ -n "${PANORAMA_BENCH_WRK:-}" ] && [ -x "$PANORAMA_BENCH_WRK" ]; then
    echo "$PANORAMA_BENCH_WRK"
    return 0
  fi
  command -v wrk 2>/dev/null
}

path="$(find_wrk || true)"
if [ -z "$path" ]; then
  apt_install wrk "set PANORAMA_BENCH_WRK" wrk
  path="$(find_wrk || true)"
  if [ -z "$path" ]; then
    log "the wrk package was installed but wrk is not on PATH"
    exit 1
  fi
fi
echo "$path"
