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
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

find_promtool() {
  if [ -n "${PANORAMA_PROMTOOL:-}" ] && [ -x "$PANORAMA_PROMTOOL" ]; then
    echo "$PANORAMA_PROMTOOL"
    return 0
  fi
  command -v promtool 2>/dev/null
}

path="$(find_promtool || true)"
if [ -z "$path" ]; then
  # The package also brings the Prometheus server and tries to start it
  # where an init system runs; only promtool is used.
  apt_install promtool "set PANORAMA_PROMTOOL" prometheus
  path="$(find_promtool || true)"
  if [ -z "$path" ]; then
    log "the prometheus package was installed but promtool is not on PATH"
    exit 1
  fi
fi
echo "$path"
