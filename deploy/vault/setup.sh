#!/usr/bin/env bash
# Prepares a real Vault for rpacloud. Run it once as a Vault administrator:
#
#   export VAULT_ADDR=https://vault.internal:8200 VAULT_TOKEN=<admin token>
#   bash deploy/vault/setup.sh /etc/rpacloud
#
# It is idempotent: running it again updates the policies and the role and
# issues a new secret ID. It
#   1. enables a KV v2 engine at MOUNT (default "secret") unless one is there,
#   2. writes the policies rpacloud-core and rpacloud-robot (policies/*.hcl,
#      rewritten for MOUNT and PREFIX),
#   3. enables AppRole (unless enabled) and makes the role rpacloud-core with
#      role_id "rpacloud-core", tokens of 1h renewable up to 24h,
#   4. writes a fresh secret ID to OUT_DIR/vault-secret-id (mode 0600) and
#      prints the vault block for the daemon's HCL.
#
# Environment: RPACLOUD_VAULT_MOUNT, RPACLOUD_VAULT_PREFIX, RPACLOUD_VAULT_ROLE,
# VAULT_BIN (default: vault on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-.}"
mount="${RPACLOUD_VAULT_MOUNT:-secret}"
prefix="${RPACLOUD_VAULT_PREFIX:-rpacloud}"
role="${RPACLOUD_VAULT_ROLE:-rpacloud-core}"
vault="${VAULT_BIN:-vault}"
: "${VAULT_ADDR:?set VAULT_ADDR to the Vault server}"

for v in "$mount" "$prefix"; do
  if ! [[ "$v" =~ ^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$ ]]; then
    echo "setup.sh: $v is not a Vault path (letters, digits, '-', '_', '.', separated by '/')" >&2
    exit 2
  fi
done

log() { printf '[vault-setup] %s\n' "$*" >&2; }

# Lists are read whole first: `grep -q` would stop reading early and, with
# pipefail, the writer's SIGPIPE would read as "not found".
mounts="$("$vault" secrets list -format=json)"
if grep -q "\"$mount/\"" <<<"$mounts"; then
  log "secrets engine at $mount/ exists"
else
  log "enabling KV v2 at $mount/"
  "$vault" secrets enable -path="$mount" -version=2 kv >/dev/null
fi

render() {
  sed -e "s#\"secret/data/rpacloud/#\"$mount/data/$prefix/#g" \
      -e "s#\"secret/metadata/rpacloud/#\"$mount/metadata/$prefix/#g" "$1"
}
render "$here/policies/rpacloud-core.hcl" | "$vault" policy write rpacloud-core - >/dev/null
render "$here/policies/rpacloud-robot.hcl" | "$vault" policy write rpacloud-robot - >/dev/null
log "policies rpacloud-core and rpacloud-robot written"

auths="$("$vault" auth list -format=json)"
if grep -q '"approle/"' <<<"$auths"; then
  log "AppRole auth is enabled"
else
  log "enabling AppRole auth"
  "$vault" auth enable approle >/dev/null
fi
"$vault" write "auth/approle/role/$role" \
  token_policies=rpacloud-core token_ttl=1h token_max_ttl=24h token_type=service \
  secret_id_ttl=0 secret_id_num_uses=0 >/dev/null
"$vault" write "auth/approle/role/$role/role-id" role_id="$role" >/dev/null
log "AppRole role $role ready (role_id $role)"

mkdir -p "$out"
umask 077
"$vault" write -f -field=secret_id "auth/approle/role/$role/secret-id" > "$out/vault-secret-id.tmp"
mv "$out/vault-secret-id.tmp" "$out/vault-secret-id"
log "secret ID written to $out/vault-secret-id"

cat <<HCL
vault {
  address        = "$VAULT_ADDR"
  auth_method    = "approle"
  role_id        = "$role"
  secret_id_file = "$(cd "$out" && pwd)/vault-secret-id"
  mount          = "$mount"
  prefix         = "$prefix"
}
HCL
