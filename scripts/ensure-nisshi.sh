#!/usr/bin/env bash
# Installs the Nisshi broker (a Kafka-compatible broker in Rust) into a cache
# outside the checkout, once per machine, and prints the path of the binary.
# Reused when the cached binary reports the pinned version.
set -euo pipefail

version="${NISSHI_VERSION:-0.8.1}"
cache="${PANORAMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/panorama}"
root="$cache/nisshi-$version"
bin="$root/bin/nisshi"

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$version"; then
  echo "$bin"
  exit 0
fi

mkdir -p "$root"
echo "installing nisshi $version into $root (about 10 minutes on 2 cores, once per machine)" >&2
# The crate declares a newer rust-version than it needs; it builds and runs
# with the toolchain here.
cargo install nisshi --version "$version" --locked --ignore-rust-version \
  --root "$root" --target-dir "$cache/nisshi-build" >&2
rm -rf "$cache/nisshi-build"
"$bin" --version >&2
echo "$bin"
