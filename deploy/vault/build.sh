#!/usr/bin/env bash
# Builds the real HashiCorp Vault 1.19.0 binary from the nested Go module in
# deploy/vault/server and caches it, so only the first run pays for the build
# (about 6 minutes on 2 cores with a warm module cache; the first download of
# Vault's modules takes longer).
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

printf '[vault] building Vault 1.19.0 into %s (takes minutes; cached afterwards)\n' "$out" >&2
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# -mod=mod: the module's go.sum is completed on the fly; GONOSUMDB: the
# checksum database does not know vault-plugin-secrets-gcp's pseudo-version.
(
  cd "$here/server"
  GOFLAGS=-mod=mod GONOSUMDB=github.com/hashicorp/vault-plugin-secrets-gcp GOWORK=off \
    go build -trimpath -o "$tmp" .
)
mv "$tmp" "$out"
printf '[vault] built %s (%s)\n' "$out" "$("$out" version 2>/dev/null | head -1)" >&2
echo "$out"
