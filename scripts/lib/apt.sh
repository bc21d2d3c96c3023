# Sourced by the scripts/ensure-*.sh scripts: installs Debian packages as
# root, directly or through sudo, unattended (CI=true, no stdin). The caller
# defines log().

# apt_install WHAT ALTERNATIVE PACKAGE...: installs PACKAGEs with apt-get.
# WHAT names them in messages ("PostgreSQL"); ALTERNATIVE says what to do
# where apt-get cannot be used ("set PANORAMA_PG_BINDIR to its bin dir").
apt_install() {
  local what="$1" alternative="$2"
  shift 2
  if ! command -v apt-get >/dev/null 2>&1; then
    log "$what not found and apt-get is unavailable; install it yourself and $alternative"
    exit 1
  fi
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      log "not root and no sudo: install $what yourself (apt-get install $*) or $alternative"
      exit 1
    fi
    sudo -n true 2>/dev/null || log "sudo may ask for your password to install $what"
    as_root=(sudo)
  fi
  log "installing $what with apt-get ($*; once per machine)"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "$@" </dev/null >&2
}
