#!/usr/bin/env bash
# Prints the path of a Python that has Segment's official SDK,
# `segment-analytics-python` (the Segment-compatible ingest test,
# tests/tests/segment.rs, sends its calls with it), installing it the first
# time into a cache outside the checkout, once per machine:
# ~/.cache/panorama/analytics-python-<version>/. The version and every
# package it needs are pinned in scripts/analytics-python-requirements.txt;
# the cached install is reused while it was made from that exact file.
#
# Needs Python 3.9 or newer with pip (PANORAMA_PYTHON, default python3)
# and PyPI. Installs into a venv, or with `pip install --target` and a
# wrapper script where Python has no venv module. Everything but the path
# goes to stderr, so callers can capture stdout. Works unattended
# (CI=true, no stdin).
set -euo pipefail

log() { echo "ensure-analytics-python: $*" >&2; }

requirements="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/analytics-python-requirements.txt"
version="$(sed -n 's/^segment-analytics-python==//p' "$requirements")"
if [ -z "$version" ]; then
  log "no segment-analytics-python==VERSION line in $requirements"
  exit 1
fi
cache="${PANORAMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/panorama}"
root="$cache/analytics-python-$version"
bin="$root/bin/python"
# Written last: an install that stopped half-way has no stamp and is redone.
stamp="$root/requirements.txt"
check='import segment.analytics.version as v, sys; sys.exit(v.VERSION != sys.argv[1])'

if [ -x "$bin" ] && cmp -s "$requirements" "$stamp" \
  && "$bin" -c "$check" "$version" 2>/dev/null; then
  echo "$bin"
  exit 0
fi

python="${PANORAMA_PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  log "segment-analytics-python $version needs Python 3.9 or newer as $python (set PANORAMA_PYTHON)"
  exit 1
fi

log "installing segment-analytics-python $version into $root (once per machine)"
rm -rf "$root"
mkdir -p "$cache"
# --no-deps with every package pinned: exactly the set in the file, and
# `pip check` fails if it is not complete.
pip_flags=(--quiet --disable-pip-version-check --no-input --no-deps -r "$requirements")
if "$python" -m venv "$root" >&2 2>/dev/null; then
  "$root/bin/python" -m pip install "${pip_flags[@]}" </dev/null >&2
  "$root/bin/python" -m pip check >&2
else
  # Debian's python3 without python3-venv: a plain directory of packages
  # and a wrapper that puts it on the path.
  rm -rf "$root"
  log "$python has no working venv module; using pip install --target"
  "$python" -m pip install --target "$root/lib" "${pip_flags[@]}" </dev/null >&2
  mkdir -p "$root/bin"
  python_path="$(command -v "$python")"
  cat >"$bin" <<WRAPPER
#!/bin/sh
PYTHONPATH="$root/lib\${PYTHONPATH:+:\$PYTHONPATH}" exec "$python_path" "\$@"
WRAPPER
  chmod +x "$bin"
fi
if ! "$bin" -c "$check" "$version" 2>/dev/null; then
  log "$bin does not have segment-analytics-python $version"
  exit 1
fi
cp "$requirements" "$stamp"
echo "$bin"
