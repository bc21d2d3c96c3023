#!/usr/bin/env bash
# Installs what building Panorama needs besides the Rust toolchain and a C
# compiler, the first time: the headers of OpenSSL and libcurl, and
# pkg-config, which the Kafka client (librdkafka, compiled by rdkafka-sys)
# links against for TLS, SASL and OAUTHBEARER's OIDC token requests.
# Debian's `libssl-dev`, `libcurl4-openssl-dev` and `pkg-config`, through
# apt-get.
#
# Does nothing when pkg-config already finds both libraries. Prints nothing
# on stdout; messages go to stderr. Works unattended (CI=true, no stdin).
set -euo pipefail

log() { echo "ensure-build-deps: $*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

found() {
  command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl libcurl
}

if found; then
  exit 0
fi

apt_install "the OpenSSL and libcurl headers" \
  "make \`pkg-config --exists openssl libcurl\` succeed" \
  libssl-dev libcurl4-openssl-dev pkg-config
if ! found; then
  log "the packages were installed but pkg-config does not find openssl and libcurl"
  exit 1
fi
