#!/usr/bin/env bash
# Prints the PostgreSQL server bin dir (initdb, pg_ctl, postgres, psql),
# installing Debian's PostgreSQL packages the first time.
#
# Debian puts the server binaries under /usr/lib/postgresql/<major>/bin, not on
# PATH, so they are looked up, in order, at:
#   1. $PANORAMA_PG_BINDIR
#   2. `pg_config --bindir` (libpq-dev / postgresql-server-dev)
#   3. the newest /usr/lib/postgresql/*/bin
# Everything but the bin dir goes to stderr, so callers can capture stdout.
# Works unattended (CI=true, no stdin).
set -euo pipefail

log() { echo "ensure-postgres: $*" >&2; }
# shellcheck source=lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

is_server_bindir() {
  [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]
}

find_bindir() {
  if [ -n "${PANORAMA_PG_BINDIR:-}" ]; then
    if is_server_bindir "$PANORAMA_PG_BINDIR"; then
      echo "$PANORAMA_PG_BINDIR"
      return 0
    fi
    log "PANORAMA_PG_BINDIR=$PANORAMA_PG_BINDIR has no initdb/pg_ctl/postgres; looking elsewhere"
  fi

  local candidate
  if command -v pg_config >/dev/null 2>&1; then
    candidate="$(pg_config --bindir 2>/dev/null || true)"
    if is_server_bindir "$candidate"; then
      echo "$candidate"
      return 0
    fi
  fi

  # Newest major version first (sort -V so 9.6 < 10 < 16).
  local dirs=(/usr/lib/postgresql/*/bin)
  while IFS= read -r candidate; do
    if is_server_bindir "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done < <(printf '%s\n' "${dirs[@]}" | sort -V -r)
  return 1
}

install_postgres() {
  # The Debian package creates a default cluster and starts it where it can;
  # that cluster is not used (dev stack and tests run private clusters).
  apt_install PostgreSQL "set PANORAMA_PG_BINDIR to its bin dir (initdb, pg_ctl, postgres)" \
    postgresql postgresql-contrib
}

# The server refuses to run as root, so scripts and tests running as root
# start it as `postgres`. The package creates that user; make sure of it.
ensure_postgres_user() {
  if getent passwd postgres >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    # Only needed when running as root; a normal user runs the server as itself.
    return 0
  fi
  log "creating system user postgres"
  getent group postgres >/dev/null 2>&1 || groupadd --system postgres
  useradd --system --gid postgres --home-dir /var/lib/postgresql --shell /bin/bash \
    --comment "PostgreSQL administrator" postgres
}

bindir="$(find_bindir || true)"
if [ -z "$bindir" ]; then
  install_postgres
  bindir="$(find_bindir || true)"
  if [ -z "$bindir" ]; then
    log "PostgreSQL was installed but no server bin dir was found under /usr/lib/postgresql"
    exit 1
  fi
fi
ensure_postgres_user
echo "$bindir"
