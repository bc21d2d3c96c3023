#!/usr/bin/env bash
# The local development stack behind `make run`: a private PostgreSQL cluster
# and a Nisshi broker (Kafka protocol), both keeping their state in .panorama/
# in the checkout, then `panorama migrate`, `panorama topics`, an admin and an
# agent API token (`dev-admin`, `dev-agent`: revoked and created anew on each
# run) and `panorama serve` in the foreground, with every provider webhook on
# (demo secrets), and `panorama simulate` in the background once serve is
# ready: simulated customers getting in touch through those webhooks, first
# two weeks of history, then about one event every 1-2 s
# (log: .panorama/simulate.log).
#
# usage: scripts/dev-stack.sh [COMMAND]
#   run      (default) start everything, serve in the foreground; Ctrl-C stops
#            serve and whatever this run started
#   up       start PostgreSQL and the broker in the background and print the
#            environment for running `panorama` by hand (cargo run -- serve)
#   stop     stop serve, the broker and PostgreSQL (what `make stop` runs)
#   status   say what is running
#   env      print the PANORAMA_* environment of the dev stack
#   clean    stop, then delete the state (database and broker data)
#
# Environment:
#   PANORAMA_DEV_PG_PORT     PostgreSQL port           (default 55432)
#   PANORAMA_DEV_KAFKA_PORT  broker port               (default 19092)
#   PANORAMA_HTTP_ADDR       serve address             (default 127.0.0.1:8080)
#   PANORAMA_DEFAULT_REGION  country of national phone numbers (default NL)
#   PANORAMA_BIN             the panorama binary       (default target/release/panorama)
#   PANORAMA_PG_BINDIR       PostgreSQL server bin dir (default: scripts/ensure-postgres.sh)
#   PANORAMA_NISSHI_BIN      nisshi binary             (default: scripts/ensure-nisshi.sh)
#   PANORAMA_SIMULATE        off: no simulated traffic (make run SIMULATE=off)
#   PANORAMA_SIMULATE_RATE, _CUSTOMERS, _SEED, _HISTORY_DAYS, _CHANNELS
#                            passed on to `panorama simulate` (defaults 0.7,
#                            50, random, 14, all)
# Running it twice reuses the state; `make clean` deletes it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$repo/.panorama"
# The cluster's data directory; see prepare_pgdata for when it is a symlink.
pgdata="$state/pg"
if [ -L "$pgdata" ]; then pgdata="$(readlink -f "$pgdata")"; fi
pg_port="${PANORAMA_DEV_PG_PORT:-55432}"
kafka_port="${PANORAMA_DEV_KAFKA_PORT:-19092}"
http_addr="${PANORAMA_HTTP_ADDR:-127.0.0.1:8080}"
panorama_bin="${PANORAMA_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/panorama}"

# Where clients reach serve: a wildcard bind answers on loopback.
http_port="${http_addr##*:}"
client_host="${http_addr%:*}"
case "$client_host" in
  0.0.0.0 | "" | "[::]") client_host=127.0.0.1 ;;
esac
base_url="http://$client_host:$http_port"

# Services started by this invocation; the exit trap of `run` stops these.
started_pg=false
started_broker=false
serve_pid=""
simulate_pid=""
simulate="${PANORAMA_SIMULATE:-on}"

log() { echo "dev-stack: $*" >&2; }
die() {
  log "$*"
  exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }

# --- helpers ----------------------------------------------------------------

# wait_for SECONDS DESCRIPTION PID COMMAND...: polls COMMAND until it succeeds,
# failing when the deadline passes or when PID (if not empty) has exited.
wait_for() {
  local seconds="$1" description="$2" pid="$3"
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "$description: process $pid exited before it was ready"
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$description: not ready after ${seconds}s"
      return 1
    fi
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# http_ok URL: true when URL answers 2xx. curl when present, else bash's /dev/tcp.
http_ok() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 2 -o /dev/null "$1"
    return
  fi
  local rest="${1#http://}"
  local hostport="${rest%%/*}" path="/${rest#*/}"
  (
    exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
    read -r -t 2 _ status _ <&3 || exit 1
    [[ "$status" == 2* ]]
  ) 2>/dev/null
}

# stop_pid PID NAME: SIGTERM, then SIGKILL if still there after 15 s.
stop_pid() {
  local pid="$1" name="$2"
  kill -0 "$pid" 2>/dev/null || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$name did not stop within 15s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  # Reap it when it is our child; harmless otherwise.
  wait "$pid" 2>/dev/null || true
}

# pid_alive PIDFILE NAME: true when PIDFILE names a live process whose command
# line contains NAME (guards against a recycled pid).
pid_alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

resolve_pg_bindir() {
  if [ -z "${pg_bindir:-}" ]; then
    pg_bindir="$(bash "$repo/scripts/ensure-postgres.sh")"
  fi
}

resolve_nisshi() {
  if [ -z "${nisshi_bin:-}" ]; then
    nisshi_bin="${PANORAMA_NISSHI_BIN:-$(bash "$repo/scripts/ensure-nisshi.sh")}"
  fi
}

# --- PostgreSQL -------------------------------------------------------------

# PostgreSQL refuses to run as root: as root, the cluster belongs to the
# `postgres` user and its commands run as that user (from /, since it may not
# be allowed into the current directory).
as_pg_owner() {
  if ! is_root; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && su -s /bin/sh postgres -c "$(printf '%q ' "$@")")
  fi
}

# As root, the postgres user must be able to reach the data directory. When the
# checkout is somewhere it cannot enter (under /root, say), the cluster lives
# under /var/lib/postgresql and .panorama/pg is a symlink to it; PostgreSQL is
# then always given the real path.
prepare_pgdata() {
  mkdir -p "$state"
  if [ -e "$pgdata" ] || [ -L "$state/pg" ] || ! is_root; then
    return 0
  fi
  getent passwd postgres >/dev/null || die "no postgres user; run scripts/ensure-postgres.sh"
  if as_pg_owner test -x "$state"; then
    mkdir -p "$pgdata"
  else
    local elsewhere
    elsewhere="/var/lib/postgresql/panorama-dev/$(printf '%s' "$repo" | cksum | cut -d' ' -f1)"
    log "postgres cannot enter $state; keeping the cluster in $elsewhere"
    mkdir -p "$elsewhere"
    chown postgres: "$(dirname "$elsewhere")"
    ln -s "$elsewhere" "$state/pg"
    pgdata="$elsewhere"
  fi
  chown postgres: "$pgdata/"
  chmod 700 "$pgdata/"
}

pg_running() {
  [ -f "$pgdata/PG_VERSION" ] || return 1
  resolve_pg_bindir
  as_pg_owner "$pg_bindir/pg_ctl" -D "$pgdata" status >/dev/null 2>&1
}

init_pg() {
  [ -f "$pgdata/PG_VERSION" ] && return 0
  resolve_pg_bindir
  prepare_pgdata
  log "creating PostgreSQL cluster in $pgdata"
  # Superuser `panorama`, trust authentication: a private cluster that only
  # listens on 127.0.0.1, for development.
  as_pg_owner "$pg_bindir/initdb" -D "$pgdata" -U panorama --auth=trust \
    -E UTF8 --no-locale >"$state/initdb.log" 2>&1 ||
    {
      cat "$state/initdb.log" >&2
      die "initdb failed"
    }
  # Appended as whoever we are: the file belongs to the cluster owner, and
  # root may write it.
  cat >>"$pgdata/postgresql.conf" <<'EOF'

# panorama dev stack (scripts/dev-stack.sh); the port is set at start.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
EOF
}

start_pg() {
  init_pg
  if pg_running; then
    # Reuse it; it keeps the port it was started with.
    pg_port="$(sed -n 4p "$pgdata/postmaster.pid")"
    log "PostgreSQL already running on 127.0.0.1:$pg_port"
  else
    if port_open 127.0.0.1 "$pg_port"; then
      die "127.0.0.1:$pg_port is taken by another process; set PANORAMA_DEV_PG_PORT"
    fi
    log "starting PostgreSQL on 127.0.0.1:$pg_port"
    # pg_ctl detaches the server into its own session, so Ctrl-C in the
    # terminal does not reach it; the trap stops it in order instead.
    as_pg_owner "$pg_bindir/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" \
      -o "-p $pg_port" -w -t 60 start >/dev/null ||
      {
        tail -n 20 "$pgdata/server.log" >&2 || true
        die "PostgreSQL did not start (log: $pgdata/server.log)"
      }
    started_pg=true
  fi
  wait_for 30 "PostgreSQL" "" "$pg_bindir/pg_isready" -q -h 127.0.0.1 -p "$pg_port"
  ensure_database
}

ensure_database() {
  local exists
  exists="$(PGCONNECT_TIMEOUT=5 "$pg_bindir/psql" -X -h 127.0.0.1 -p "$pg_port" -U panorama -d postgres -Atq \
    -c "select 1 from pg_database where datname = 'panorama'")"
  if [ "$exists" != "1" ]; then
    log "creating database panorama"
    "$pg_bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U panorama panorama
  fi
}

stop_pg() {
  pg_running || return 0
  log "stopping PostgreSQL"
  as_pg_owner "$pg_bindir/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null
}

# --- broker -----------------------------------------------------------------

start_broker() {
  mkdir -p "$state"
  if pid_alive "$state/broker.pid" nisshi; then
    # Reuse it; it keeps the port it was started with.
    kafka_port="$(cat "$state/broker.port" 2>/dev/null || echo "$kafka_port")"
    log "broker already running on 127.0.0.1:$kafka_port (pid $(cat "$state/broker.pid"))"
    return 0
  fi
  resolve_nisshi
  if port_open 127.0.0.1 "$kafka_port"; then
    die "127.0.0.1:$kafka_port is taken by another process; set PANORAMA_DEV_KAFKA_PORT"
  fi
  log "starting broker on 127.0.0.1:$kafka_port (log: $state/broker.log)"
  # Nisshi resolves a sqlite:// path against its working directory (even one
  # that starts with /), so it runs in .panorama and opens broker.db there.
  # Its own session keeps Ctrl-C away from it; the trap stops it in order.
  # The rebalance delay is Kafka's group.initial.rebalance.delay.ms: a dev
  # stack has one projector, so it gets its partitions at once.
  (
    cd "$state"
    exec setsid "$nisshi_bin" broker \
      --listener-url "tcp://127.0.0.1:$kafka_port" \
      --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
      --storage-engine "sqlite://broker.db" \
      --group-initial-rebalance-delay 0s
  ) >>"$state/broker.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$state/broker.pid"
  echo "$kafka_port" >"$state/broker.port"
  started_broker=true
  if ! wait_for 30 "broker" "$pid" port_open 127.0.0.1 "$kafka_port"; then
    tail -n 20 "$state/broker.log" >&2 || true
    die "broker did not start (log: $state/broker.log)"
  fi
}

stop_broker() {
  if pid_alive "$state/broker.pid" nisshi; then
    stop_pid "$(cat "$state/broker.pid")" broker
  fi
  rm -f "$state/broker.pid" "$state/broker.port"
}

# --- panorama ---------------------------------------------------------------

export_panorama_env() {
  export PANORAMA_DATABASE_URL="postgres://panorama@127.0.0.1:$pg_port/panorama"
  export PANORAMA_KAFKA_BROKERS="127.0.0.1:$kafka_port"
  export PANORAMA_HTTP_ADDR="$http_addr"
  export PANORAMA_LOG_FORMAT="${PANORAMA_LOG_FORMAT:-pretty}"
  # National phone numbers (a web form's "06 1234 5678") need a country to
  # become identifiers; without one they are only kept as unparsed.phone.
  export PANORAMA_DEFAULT_REGION="${PANORAMA_DEFAULT_REGION:-NL}"
  # One broker keeps one copy of each record; the defaults (3 copies, 2 in
  # sync) are for a real cluster, and `panorama topics` refuses them here.
  export PANORAMA_TOPIC_REPLICATION_FACTOR="${PANORAMA_TOPIC_REPLICATION_FACTOR:-1}"
  export PANORAMA_TOPIC_MIN_INSYNC_REPLICAS="${PANORAMA_TOPIC_MIN_INSYNC_REPLICAS:-1}"
  # One process runs the gateway and the projector, so its own writes wake
  # its consumers: idle, they pause instead of holding fetches open, which
  # the broker's storage engine answers by polling (docs/performance.md).
  # Only a write by another process waits for the probe; every 5 s keeps
  # the idle stack under 2% of a core per process.
  export PANORAMA_KAFKA_IDLE_PROBE_MS="${PANORAMA_KAFKA_IDLE_PROBE_MS:-5000}"
  # With the simulator on, one "request served" line per simulated event
  # (hundreds during the history backfill) would scroll the tokens out of
  # sight; PANORAMA_LOG=info brings them back.
  if simulate_on; then
    export PANORAMA_LOG="${PANORAMA_LOG:-info,panorama::http=warn}"
  fi
}

# The simulator's demo secrets (panorama_simulator::DemoSecrets): serve
# checks them, the simulator signs with them. Set any of these variables to
# use your own.
export_demo_secrets() {
  export PANORAMA_PUBLIC_URL="${PANORAMA_PUBLIC_URL:-https://panorama.example.com}"
  export PANORAMA_TWILIO_AUTH_TOKEN="${PANORAMA_TWILIO_AUTH_TOKEN:-demo-twilio-auth-token}"
  export PANORAMA_META_APP_SECRET="${PANORAMA_META_APP_SECRET:-demo-meta-app-secret}"
  export PANORAMA_META_VERIFY_TOKEN="${PANORAMA_META_VERIFY_TOKEN:-demo-meta-verify-token}"
  export PANORAMA_SENDGRID_SECRET="${PANORAMA_SENDGRID_SECRET:-demo-sendgrid-secret}"
  export PANORAMA_MAILGUN_SIGNING_KEY="${PANORAMA_MAILGUN_SIGNING_KEY:-demo-mailgun-signing-key}"
  export PANORAMA_CHANNEL_TOKENS="${PANORAMA_CHANNEL_TOKENS:-demo-channel-token}"
  export PANORAMA_WEB_WRITE_KEYS="${PANORAMA_WEB_WRITE_KEYS:-demo-web-write-key}"
  export PANORAMA_WEB_ALLOWED_ORIGINS="${PANORAMA_WEB_ALLOWED_ORIGINS:-https://shop.example}"
}

simulate_on() {
  case "$simulate" in
    off | false | no | 0) return 1 ;;
    *) return 0 ;;
  esac
}

# Starts `panorama simulate` in the background (own session, so Ctrl-C goes
# to this script, which stops it with serve), logging to .panorama/simulate.log.
start_simulate() {
  simulate_on || return 0
  local rate="${PANORAMA_SIMULATE_RATE:-0.7}"
  log "starting the simulator (log: $state/simulate.log); make run SIMULATE=off turns it off"
  PANORAMA_SIMULATE_URL="$base_url" PANORAMA_SIMULATE_TOKEN="$admin_token" \
    PANORAMA_SIMULATE_RATE="$rate" PANORAMA_LOG_FORMAT=pretty \
    setsid "$panorama_bin" simulate </dev/null >>"$state/simulate.log" 2>&1 &
  simulate_pid=$!
  echo "$simulate_pid" >"$state/simulate.pid"
}

stop_simulate() {
  local pid="$simulate_pid"
  if [ -z "$pid" ] && pid_alive "$state/simulate.pid" simulate; then
    pid="$(cat "$state/simulate.pid")"
  fi
  [ -n "$pid" ] && stop_pid "$pid" "panorama simulate"
  simulate_pid=""
  rm -f "$state/simulate.pid"
}

print_env() {
  cat <<EOF
export PANORAMA_DATABASE_URL=postgres://panorama@127.0.0.1:$pg_port/panorama
export PANORAMA_KAFKA_BROKERS=127.0.0.1:$kafka_port
export PANORAMA_HTTP_ADDR=$http_addr
export PANORAMA_DEFAULT_REGION=${PANORAMA_DEFAULT_REGION:-NL}
EOF
}

stop_serve() {
  local pid="$serve_pid"
  if [ -z "$pid" ] && pid_alive "$state/serve.pid" panorama; then
    pid="$(cat "$state/serve.pid")"
  fi
  [ -n "$pid" ] && stop_pid "$pid" "panorama serve"
  rm -f "$state/serve.pid"
}

# Secrets of the dev tokens, set by create_dev_tokens.
admin_token=""
agent_token=""

# dev_token ROLE NAME: revokes the live token NAME, if any, creates it anew and
# prints its secret. Revoke-then-create keeps reruns idempotent.
dev_token() {
  "$panorama_bin" token revoke --name "$2" >/dev/null 2>&1 || true
  "$panorama_bin" token create --role "$1" --name "$2" 2>"$state/token.err" || {
    cat "$state/token.err" >&2
    return 1
  }
}

create_dev_tokens() {
  admin_token="$(dev_token admin dev-admin)"
  agent_token="$(dev_token agent dev-agent)"
  [ -n "$admin_token" ] && [ -n "$agent_token" ] || die "cannot create the dev API tokens"
}

print_next_steps() {
  local base="$base_url"
  local simulator=" Simulator: off (make run SIMULATE=off). Without it, post events yourself:"
  if simulate_on; then
    simulator=" Simulator: running — simulated customers call, email, WhatsApp, chat and
 fill in forms through the real webhooks (two weeks of history first, then
 about one event every 1-2 s; log: .panorama/simulate.log). Turn it off with
 \`make run SIMULATE=off\` (or PANORAMA_SIMULATE=off). Post your own events too:"
  fi
  cat <<EOF

────────────────────────────────────────────────────────────────────────
 Panorama is ready on $base   (PostgreSQL 127.0.0.1:$pg_port, broker 127.0.0.1:$kafka_port)

 Agent console: $base/   (sign in with the agent token below)

 API tokens, created anew on every start (\`panorama token list\`):
   admin  dev-admin  $admin_token
   agent  dev-agent  $agent_token

$simulator

   curl -sS -X POST $base/v1/events \\
     -H 'authorization: Bearer $admin_token' \\
     -H 'content-type: application/json' \\
     -d '{"event_id":"demo-1","occurred_at":"2026-11-23T10:00:00Z","channel":"phone","source":"cti","type":"call.ended","direction":"inbound","identifiers":[{"kind":"phone","value":"+31612345678"},{"kind":"email","value":"Anna@Example.nl"}],"display_name":"Anna de Vries","contact_reason":"my order did not arrive","duration_seconds":240}'

 A moment later (the projector writes it), look the customer up by phone or
 email, then use the "id" from the answer for the profile and the timeline
 (customer reads need the agent role):

   export TOKEN=$agent_token
   curl -sS -H "authorization: Bearer \$TOKEN" '$base/v1/customers/lookup?phone=%2B31612345678'
   curl -sS -H "authorization: Bearer \$TOKEN" '$base/v1/customers/lookup?email=anna@example.nl'
   curl -sS -H "authorization: Bearer \$TOKEN" $base/v1/customers/<id>
   curl -sS -H "authorization: Bearer \$TOKEN" $base/v1/customers/<id>/timeline

 Metrics: $base/metrics      Logs of the broker: .panorama/broker.log
 Stop: Ctrl-C stops the simulator, serve, the broker and PostgreSQL.
       If something is left running (a killed terminal), \`make stop\`.
────────────────────────────────────────────────────────────────────────

EOF
}

# Exit trap of `run`: stop serve, then what this run started, in order.
on_exit() {
  local status=$?
  trap - EXIT INT TERM
  stop_simulate
  stop_serve
  if $started_broker; then stop_broker; fi
  if $started_pg; then stop_pg; fi
  if ! $started_broker || ! $started_pg; then
    log "services that were already running before this run are left running; \`make stop\` stops them"
  fi
  exit "$status"
}

# --- commands ---------------------------------------------------------------

cmd_up() {
  start_pg
  start_broker
}

cmd_run() {
  [ -x "$panorama_bin" ] ||
    die "no panorama binary at $panorama_bin; build it with: cargo build --release -p panorama"
  if port_open "$client_host" "$http_port"; then
    die "$http_addr is taken (a panorama from an earlier run? \`make stop\`); or set PANORAMA_HTTP_ADDR"
  fi
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  cmd_up
  export_panorama_env
  export_demo_secrets
  "$panorama_bin" migrate
  "$panorama_bin" topics
  create_dev_tokens
  # Its own session: Ctrl-C reaches only this script, which then stops serve
  # before the broker and PostgreSQL (stop order matters for a clean shutdown).
  setsid "$panorama_bin" serve </dev/null &
  serve_pid=$!
  echo "$serve_pid" >"$state/serve.pid"
  wait_for 120 "panorama serve" "$serve_pid" http_ok "$base_url/readyz" || exit 1
  start_simulate
  print_next_steps
  local status=0
  wait "$serve_pid" || status=$?
  serve_pid=""
  rm -f "$state/serve.pid"
  log "panorama serve exited with status $status"
  exit "$status"
}

cmd_stop() {
  stop_simulate
  stop_serve
  stop_broker
  if [ -f "$pgdata/PG_VERSION" ]; then
    stop_pg
  fi
}

cmd_clean() {
  cmd_stop
  if [ -L "$state/pg" ]; then
    rm -rf "$(readlink -f "$state/pg")"
  fi
  rm -rf "$state"
  log "deleted $state"
}

cmd_status() {
  if pid_alive "$state/simulate.pid" simulate; then
    echo "simulate:   running (pid $(cat "$state/simulate.pid")), log $state/simulate.log"
  else
    echo "simulate:   stopped"
  fi
  if pid_alive "$state/serve.pid" panorama; then
    echo "serve:      running (pid $(cat "$state/serve.pid")) on $http_addr"
  else
    echo "serve:      stopped"
  fi
  if pid_alive "$state/broker.pid" nisshi; then
    echo "broker:     running (pid $(cat "$state/broker.pid")) on 127.0.0.1:$(cat "$state/broker.port")"
  else
    echo "broker:     stopped"
  fi
  if pg_running; then
    echo "postgresql: running on 127.0.0.1:$(sed -n 4p "$pgdata/postmaster.pid") ($pgdata)"
  else
    echo "postgresql: stopped"
  fi
}

cmd_env() {
  if pg_running; then pg_port="$(sed -n 4p "$pgdata/postmaster.pid")"; fi
  if pid_alive "$state/broker.pid" nisshi; then kafka_port="$(cat "$state/broker.port")"; fi
  print_env
}

main() {
  local command="${1:-run}"
  case "$command" in
    run) cmd_run ;;
    up)
      cmd_up
      log "PostgreSQL and the broker run in the background; \`make stop\` stops them."
      log "environment for panorama (eval \"\$(scripts/dev-stack.sh env)\"):"
      print_env
      ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    clean) cmd_clean ;;
    -h | --help | help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}" ;;
    *) die "unknown command: $command (run, up, stop, status, env, clean)" ;;
  esac
}

# Sourcing the script (for trying one function by hand) only defines things.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
