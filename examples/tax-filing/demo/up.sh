#!/usr/bin/env bash
# Starts the tax-filing demo: the demo e-tax portal on 127.0.0.1:8090 and
# `rpacloud dev` with this directory's configuration on 127.0.0.1:8080
# (which starts a Vault dev server when it finds a vault binary), then
# stores the portal login in the credential store. Ctrl-C stops both.
# Run from the repository root: bash examples/tax-filing/demo/up.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
bin="${HOME}/.cache/rpacloud/bin"
mkdir -p "$bin" .rpacloud/tax-filing
go build -o "$bin/rpacloud" ./cmd/rpacloud
go build -o "$bin/etax-portal" ./examples/tax-filing/cmd/etax-portal

# A login made up for this run: it exists only in the portal's memory and
# in the credential store, never in a file.
export ETAX_USER=demo-filer
ETAX_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
export ETAX_PASSWORD

trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT INT TERM
"$bin/etax-portal" --listen 127.0.0.1:8090 &
"$bin/rpacloud" dev --config examples/tax-filing/demo --data-dir .rpacloud/tax-filing --listen 127.0.0.1:8080 &

for _ in $(seq 1 100); do
  [ -s .rpacloud/tax-filing/admin.token ] && curl -fs http://127.0.0.1:8080/healthz >/dev/null && break
  sleep 0.3
done
export RPACLOUD_TOKEN="$(cat .rpacloud/tax-filing/admin.token)"
if printf '%s\n' "$ETAX_PASSWORD" | "$bin/rpacloud" credential put --customer tax-service --name etax/demo \
    --username "$ETAX_USER" --password-stdin >/dev/null; then
  echo "portal login stored in the credential store as tax-service/etax/demo"
else
  echo "could not store the portal login: rpacloud dev has no Vault (see its output; build one with bash deploy/vault/build.sh)" >&2
  exit 1
fi
echo "ready: in another terminal run the second command of examples/tax-filing/README.md"
wait
