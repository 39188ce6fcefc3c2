#!/usr/bin/env bash
# Installs and starts what the test suite needs, runs the given command with
# their addresses in the environment, and stops them again, whatever the
# command's outcome. Every run gets its own ephemeral PostgreSQL cluster on a
# free loopback port (never the system service), owned by this script.
#
#   bash .ci/services.sh go test ./...
#
# Exports: RPACLOUD_TEST_POSTGRES_DSN, RPACLOUD_REQUIRE_POSTGRES=1,
# RPACLOUD_CHROMIUM (path), RPACLOUD_REQUIRE_CHROMIUM=1,
# RPACLOUD_TEST_VAULT_ADDR, RPACLOUD_TEST_VAULT_TOKEN, RPACLOUD_REQUIRE_VAULT=1,
# RPACLOUD_VAULT_BIN (path), RPACLOUD_REQUIRE_PROMTOOL=1,
# RPACLOUD_REQUIRE_NGINX=1, RPACLOUD_PG_BIN
# (PostgreSQL's bin directory: pg_dump, pg_restore),
# RPACLOUD_REQUIRE_IMAGE=1 (as root)
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ -z "$(pg_bindir)" ] || [ ! -x "$(pg_bindir)/initdb" ]; then
  apt_install postgresql
fi
PGBIN="$(pg_bindir)"

# Real headless Chromium for the browser crawler, dashboard and PDF tests, and
# poppler's pdftoppm/pdftotext to check rendered documents.
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
# Chinese documents print with a CJK font; without one Chromium renders boxes.
fc-list :lang=zh 2>/dev/null | grep -q . || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi
export RPACLOUD_CHROMIUM="$(command -v chromium)"
export RPACLOUD_REQUIRE_CHROMIUM=1

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

WORK="$(mktemp -d /tmp/rpacloud-services.XXXXXX)"
chmod 755 "$WORK"
# Vault: the real server, built once from its Go module into a cache by
# deploy/vault/build.sh (Debian has no package), in the background while
# PostgreSQL starts; the first build takes minutes.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAULT_BIN="${RPACLOUD_VAULT_BIN:-$HOME/.cache/rpacloud/bin/vault}"
vault_build_pid=""
if [ ! -x "$VAULT_BIN" ]; then
  log "building Vault into $VAULT_BIN (first run only)"
  VAULT_BIN="$VAULT_BIN" bash "$ROOT/deploy/vault/build.sh" >"$WORK/vault-build.log" 2>&1 &
  vault_build_pid=$!
fi
VAULT_PID=""

PGDATA="$WORK/pg"
PGPORT="$(free_port)"
RUNAS=()
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root.
  id postgres >/dev/null 2>&1 || as_root useradd --system --home "$WORK" postgres
  mkdir -p "$PGDATA" && chown postgres "$PGDATA"
  RUNAS=(runuser -u postgres --)
else
  mkdir -p "$PGDATA"
fi

cleanup() {
  local rc=$?
  if [ -f "$PGDATA/postmaster.pid" ]; then
    log "stopping PostgreSQL"
    "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$VAULT_PID" ]; then
    log "stopping Vault"
    kill "$VAULT_PID" 2>/dev/null || true
    wait "$VAULT_PID" 2>/dev/null || true
  fi
  if [ -n "$vault_build_pid" ]; then kill "$vault_build_pid" 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

log "starting PostgreSQL ($("$PGBIN/postgres" --version | awk '{print $3}')) on 127.0.0.1:$PGPORT"
"${RUNAS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U rpacloud --auth=trust -E UTF8 --no-sync >/dev/null
"${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 -l "$PGDATA/server.log" \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
  start >/dev/null
"${RUNAS[@]}" "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U rpacloud rpacloud_test

export RPACLOUD_TEST_POSTGRES_DSN="postgres://rpacloud@127.0.0.1:$PGPORT/rpacloud_test?sslmode=disable"
export RPACLOUD_REQUIRE_POSTGRES=1
# pg_dump and pg_restore of the same version, for the restore test.
export RPACLOUD_PG_BIN="$PGBIN"
log "PostgreSQL ready: $RPACLOUD_TEST_POSTGRES_DSN"

# ---- monitoring (issue 7) ------------------------------------------------
# Node.js and npm for graph/dashboard's test of the npm graphql-ws client
# (it runs `npm ci` against the registry, then node). A missing node fails
# that test instead of skipping it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt_install nodejs npm
fi
export RPACLOUD_REQUIRE_NODE=1
# ---- end monitoring --------------------------------------------------------

# ---- metrics (issue 18) --------------------------------------------------
# promtool checks deploy/prometheus/alerts.yml and runs its unit tests
# (cmd/rpacloud/daemon/deploy_test.go); Debian's prometheus package ships it
# as /usr/bin/promtool (its service is not started here).
if ! command -v promtool >/dev/null 2>&1; then
  apt_install prometheus
  # The package enables a Prometheus server where systemd runs; the
  # tests want only its promtool.
  as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
export RPACLOUD_REQUIRE_PROMTOOL=1
# ---- end metrics -----------------------------------------------------------

# ---- tls (issue 19) ------------------------------------------------------
# Debian's nginx runs deploy/nginx/rpacloud.conf in front of a daemon
# (cmd/rpacloud/tls_e2e_test.go), as its own unprivileged process on free
# loopback ports; the system service is not wanted.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  apt_install nginx
  as_root systemctl disable --now nginx >/dev/null 2>&1 || true
fi
export RPACLOUD_REQUIRE_NGINX=1
# ---- end tls ---------------------------------------------------------------

# ---- image (issue 19) ----------------------------------------------------
# deploy/image's test builds the daemon and robot images from
# deploy/image/Containerfile without a container engine: Debian's
# mmdebstrap makes the root filesystem (as root), cached under
# ~/.cache/rpacloud/image by the hash of its inputs. The first build
# (about 900 MB, with Chromium and CJK fonts) takes several minutes, so it is
# made here, before the tests' time limit starts, with the images' static
# binary (into Go's build cache, so the test only links it); later runs
# find both.
if [ "$(id -u)" = 0 ]; then
  command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
  log "image root filesystems (cached; the first build takes several minutes)"
  if ! (cd "$ROOT" && go run ./cmd/rpacloud-image --warm) >"$WORK/image-warm.log" 2>&1; then
    cat "$WORK/image-warm.log" >&2
    log "building the image root filesystem failed"
    exit 1
  fi
  export RPACLOUD_REQUIRE_IMAGE=1
else
  log "not root: the image test (mmdebstrap, chroot) will skip"
fi
# ---- end image -------------------------------------------------------------

if [ -n "$vault_build_pid" ]; then
  log "waiting for the Vault build"
  if ! wait "$vault_build_pid"; then
    vault_build_pid=""
    cat "$WORK/vault-build.log" >&2
    log "building Vault failed"
    exit 1
  fi
  vault_build_pid=""
fi
# A dev server for the run: in memory, on a free loopback port, with a
# random root token; tests that seal or stop Vault start their own.
VAULT_PORT="$(free_port)"
VAULT_ROOT="root-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
VAULT_DISABLE_MLOCK=true "$VAULT_BIN" server -dev -dev-listen-address="127.0.0.1:$VAULT_PORT" \
  -dev-root-token-id="$VAULT_ROOT" -dev-no-store-token -log-level=warn >"$WORK/vault.log" 2>&1 &
VAULT_PID=$!
export RPACLOUD_TEST_VAULT_ADDR="http://127.0.0.1:$VAULT_PORT"
for _ in $(seq 1 300); do
  if VAULT_ADDR="$RPACLOUD_TEST_VAULT_ADDR" "$VAULT_BIN" status >/dev/null 2>&1; then break; fi
  if ! kill -0 "$VAULT_PID" 2>/dev/null; then cat "$WORK/vault.log" >&2; log "Vault did not start"; exit 1; fi
  sleep 0.1
done
export RPACLOUD_TEST_VAULT_TOKEN="$VAULT_ROOT"
export RPACLOUD_REQUIRE_VAULT=1
export RPACLOUD_VAULT_BIN="$VAULT_BIN"
log "Vault ready: $RPACLOUD_TEST_VAULT_ADDR ($("$VAULT_BIN" version | awk '{sub(",", "", $2); print $1, $2; exit}'))"

"$@"
