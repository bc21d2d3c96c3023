#!/usr/bin/env bash
# Prints the path of chromedriver, installing Debian's `chromium` and
# `chromium-driver` packages the first time. The console's browser test
# (tests/tests/console.rs) drives a headless Chromium through it.
#
# Looked up, in order, at $PANORAMA_CHROMEDRIVER, then PATH, then
# /usr/bin/chromedriver; the browser itself must be installed beside it.
# Everything but the path goes to stderr, so callers can capture stdout.
# Works unattended (CI=true, no stdin).
set -euo pipefail

log() { echo "ensure-chromium: $*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

find_driver() {
  if [ -n "${PANORAMA_CHROMEDRIVER:-}" ] && [ -x "$PANORAMA_CHROMEDRIVER" ]; then
    echo "$PANORAMA_CHROMEDRIVER"
    return 0
  fi
  local found
  found="$(command -v chromedriver 2>/dev/null || true)"
  if [ -z "$found" ] && [ -x /usr/bin/chromedriver ]; then
    found=/usr/bin/chromedriver
  fi
  [ -n "$found" ] || return 1
  # The driver without the browser is no use to the test.
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || return 1
  echo "$found"
}

path="$(find_driver || true)"
if [ -z "$path" ]; then
  apt_install "Chromium and chromedriver" "set PANORAMA_CHROMEDRIVER" \
    chromium chromium-driver fonts-dejavu-core
  path="$(find_driver || true)"
  if [ -z "$path" ]; then
    log "chromium-driver was installed but chromedriver is not on PATH"
    exit 1
  fi
fi
echo "$path"
