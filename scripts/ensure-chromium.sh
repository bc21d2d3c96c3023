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

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n true 2>/dev/null || log "sudo may ask for your password to install chromium"
    sudo "$@"
  else
    log "not root and no sudo: install chromium and chromium-driver yourself (apt-get install chromium chromium-driver) or set PANORAMA_CHROMEDRIVER"
    exit 1
  fi
}

path="$(find_driver || true)"
if [ -z "$path" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "chromedriver not found and apt-get is unavailable; install Chromium and its driver and set PANORAMA_CHROMEDRIVER"
    exit 1
  fi
  log "installing chromium and chromium-driver with apt-get (once per machine)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    chromium chromium-driver fonts-dejavu-core </dev/null >&2
  path="$(find_driver || true)"
  if [ -z "$path" ]; then
    log "chromium-driver was installed but chromedriver is not on PATH"
    exit 1
  fi
fi
echo "$path"
