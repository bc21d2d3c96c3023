#!/usr/bin/env bash
# Prints the path of promtool (Prometheus' config and rule checker),
# installing Debian's `prometheus` package the first time. The tests run
# `promtool check config` and `promtool check rules` on deploy/.
#
# Looked up, in order, at $PANORAMA_PROMTOOL, then PATH. Everything but the
# path goes to stderr, so callers can capture stdout. Works unattended
# (CI=true, no stdin).
set -euo pipefail

log() { echo "ensure-promtool: $*" >&2; }

find_promtool() {
  if [ -n "${PANORAMA_PROMTOOL:-}" ] && [ -x "$PANORAMA_PROMTOOL" ]; then
    echo "$PANORAMA_PROMTOOL"
    return 0
  fi
  command -v promtool 2>/dev/null
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n true 2>/dev/null || log "sudo may ask for your password to install promtool"
    sudo "$@"
  else
    log "not root and no sudo: install promtool yourself (apt-get install prometheus) or set PANORAMA_PROMTOOL"
    exit 1
  fi
}

path="$(find_promtool || true)"
if [ -z "$path" ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "promtool not found and apt-get is unavailable; install Prometheus' promtool and set PANORAMA_PROMTOOL"
    exit 1
  fi
  log "installing promtool with apt-get (Debian package prometheus, once per machine)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
  # The package also brings the Prometheus server and tries to start it
  # where an init system runs; only promtool is used.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    prometheus </dev/null >&2
  path="$(find_promtool || true)"
  if [ -z "$path" ]; then
    log "the prometheus package was installed but promtool is not on PATH"
    exit 1
  fi
fi
echo "$path"
