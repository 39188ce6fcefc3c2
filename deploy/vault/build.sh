#!/usr/bin/env bash
# Builds the real HashiCorp Vault 1.19.0 binary from the nested Go module in
# deploy/vault/server and caches it, so only the first run pays for the build
# (see the README's quick start for the measured time), with a progress line
# at least every tenth of the packages compiled.
#
#   bash deploy/vault/build.sh            # prints the binary's path
#   VAULT_BIN=/elsewhere/vault bash deploy/vault/build.sh
#
# Already built (or a `vault` on PATH when RPACLOUD_VAULT_FROM_PATH=1):
# nothing to do. Concurrent runs wait for one build (flock).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${VAULT_BIN:-$HOME/.cache/rpacloud/bin/vault}"

if [ -x "$out" ]; then echo "$out"; exit 0; fi
if [ "${RPACLOUD_VAULT_FROM_PATH:-0}" = 1 ] && command -v vault >/dev/null 2>&1; then
  command -v vault; exit 0
fi

mkdir -p "$(dirname "$out")"
exec 9>"$out.lock"
flock 9
if [ -x "$out" ]; then echo "$out"; exit 0; fi

start=$SECONDS
printf '[vault] building Vault 1.19.0 into %s: once per machine, cached afterwards\n' "$out" >&2
tmp="$out.tmp.$$"
ticker=""
trap 'rm -f "$tmp"; [ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true' EXIT
# -mod=mod: the module's go.sum is completed on the fly; GONOSUMDB: the
# checksum database does not know vault-plugin-secrets-gcp's pseudo-version.
export GOFLAGS=-mod=mod GONOSUMDB=github.com/hashicorp/vault-plugin-secrets-gcp GOWORK=off
cd "$here/server"

# Step 1: Vault's modules (about 700 MB on a new machine). go prints nothing
# while it downloads, so a ticker shows the module cache growing.
modcache="$(go env GOMODCACHE)/cache/download"
mkdir -p "$modcache"
before=$(du -sm "$modcache" 2>/dev/null | cut -f1)
( while sleep 15; do
    now=$(du -sm "$modcache" 2>/dev/null | cut -f1)
    printf '[vault] 1/2 downloading modules: %s MB so far (%ds)\n' "$((now - before))" "$((SECONDS - start))" >&2
  done ) &
ticker=$!
printf '[vault] 1/2 resolving and downloading modules\n' >&2
total=$(go list -deps . | wc -l)
kill "$ticker" 2>/dev/null || true; ticker=""

# Step 2: compile. go build -v names each package it compiles (those not in
# the build cache); count them instead of printing 1,500 lines. Anything that
# is not a bare import path (compiler errors, "# pkg" headers) is shown.
printf '[vault] 2/2 compiling %d packages (%ds so far)\n' "$total" "$((SECONDS - start))" >&2
set +e
go build -v -trimpath -o "$tmp" . 2>&1 | {
  n=0 step=$(( (total + 9) / 10 ))
  while IFS= read -r line; do
    case "$line" in
      *" "*|"#"*|"") printf '%s\n' "$line" >&2; continue ;;
    esac
    n=$((n + 1))
    if [ $((n % step)) = 0 ]; then
      printf '[vault] 2/2 compiled %d of at most %d packages (%ds)\n' "$n" "$total" "$((SECONDS - start))" >&2
    fi
  done
}
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" != 0 ]; then
  printf '[vault] build failed (exit %s); fix the cause above and run again\n' "$rc" >&2
  exit "$rc"
fi
mv "$tmp" "$out"
printf '[vault] built %s in %ds (%s)\n' "$out" "$((SECONDS - start))" "$("$out" version 2>/dev/null | head -1)" >&2
echo "$out"
