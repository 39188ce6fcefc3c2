# Policy of the rpacloud daemon (attached to the rpacloud-core AppRole).
# setup.sh rewrites "secret" and "rpacloud" to the vault block's mount and
# prefix when they differ.

# Onboarding stores and rotates credentials (KV v2 check-and-set), and
# delivery reads them into response-wrapped, single-use tokens for robots:
# the daemon asks Vault to wrap the read, so it never sees the values.
path "secret/data/rpacloud/*" {
  capabilities = ["create", "read", "update"]
}

# Metadata: versions and times for the API, custom metadata (field names,
# who changed it), listing per customer, and deleting every version.
path "secret/metadata/rpacloud/*" {
  capabilities = ["read", "list", "update", "delete"]
}

# Revoke the unused wrapping tokens of an attempt that ended.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# Keep its own token alive (also in Vault's default policy; stated here so
# the daemon works with token_no_default_policy roles).
path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}
