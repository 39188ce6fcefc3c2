#!/usr/bin/env bash
# Runs the dispatcher benchmarks of the README's performance section and the
# River comparison on the same PostgreSQL, one after the other:
#
#   bash .ci/services.sh bash deploy/bench/run.sh [TASKS] [ROBOTS] [CUSTOMERS]
#
# .ci/services.sh starts a throw-away PostgreSQL (fsync=off,
# synchronous_commit=off) and exports RPACLOUD_TEST_POSTGRES_DSN. Each tool
# creates its own database there and drops it afterwards. Prints one JSON
# object per line: rpacloud on PostgreSQL, River on PostgreSQL, rpacloud on
# SQLite, then the backlog runs on both databases when BACKLOG=1.
#
# River's own CLI (`river bench`) runs too when RIVER_CLI points at a built
# `river` binary. It is not part of this module; build it in a scratch
# module (v0.26.0 builds with this Go):
#
#   mkdir /tmp/riverx && cd /tmp/riverx && go mod init x &&
#     go get github.com/riverqueue/river/cmd/river@v0.26.0 &&
#     go build -o /tmp/river github.com/riverqueue/river/cmd/river
#   RIVER_CLI=/tmp/river bash .ci/services.sh bash deploy/bench/run.sh
#
# It gets a fresh database of its own (`river bench` truncates River's
# jobs table), migrated with `river migrate-up`, and burns down TASKS
# pre-inserted jobs (`--num-total-jobs`); its last line is turned into
# {"system": "river-cli", "jobs", "jobs_per_s", "seconds"}.
#
# Then the fleet line: `rpacloud bench fleet` on PostgreSQL with
# FLEET_ROBOTS virtual robots (default 1000) offered FLEET_RATE tasks a
# second (default 200) for FLEET_DURATION (default 60s), 2-second tasks;
# FLEET_ROBOTS=0 skips it.
set -euo pipefail
N="${1:-10000}"
W="${2:-16}"
C="${3:-10}"
: "${RPACLOUD_TEST_POSTGRES_DSN:?run under bash .ci/services.sh}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/rpacloud" ./cmd/rpacloud)
(cd "$root/deploy/bench/river" && go build -o "$bin/riverbench" .)
compact() { python3 -c 'import json,sys; d=json.load(sys.stdin); [r.pop("plan",None) for r in d.get("backlog_runs",[])]; print(json.dumps(d))'; }
echo "# $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | awk '{print $3}'), $(psql --version 2>/dev/null || ls /usr/lib/postgresql)"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin/rpacloud" bench dispatch --db "$RPACLOUD_TEST_POSTGRES_DSN" --tasks "$N" --robots "$W" --customers "$C" --json | compact
"$bin/riverbench" --database-url "$RPACLOUD_TEST_POSTGRES_DSN" --jobs "$N" --workers "$W" --json | compact
"$bin/rpacloud" bench dispatch --db sqlite --tasks "$N" --robots "$W" --customers "$C" --json | compact
if [ -n "${RIVER_CLI:-}" ]; then
  rdb="river_cli_$$"
  base="${RPACLOUD_TEST_POSTGRES_DSN%%\?*}"
  rurl="${base%/*}/$rdb"
  [ "$base" = "$RPACLOUD_TEST_POSTGRES_DSN" ] || rurl="$rurl?${RPACLOUD_TEST_POSTGRES_DSN#*\?}"
  psql -q "$RPACLOUD_TEST_POSTGRES_DSN" -c "CREATE DATABASE $rdb"
  "$RIVER_CLI" migrate-up --database-url "$rurl" >/dev/null
  "$RIVER_CLI" bench --database-url "$rurl" --num-total-jobs "$N" 2>&1 | tail -n 1 | python3 -c '
import json, re, sys
line = sys.stdin.read()
num = lambda k: float(re.search(k + r" \[ *([0-9.]+) *\]", line).group(1))
secs = re.search(r"running ([0-9.]+)(ms|s)", line)
print(json.dumps({"system": "river-cli", "jobs": int(num("total jobs worked")), "jobs_per_s": num("job/sec"),
                  "seconds": float(secs.group(1)) / (1000 if secs.group(2) == "ms" else 1) if secs else None, "line": line.strip()}))'
  psql -q "$RPACLOUD_TEST_POSTGRES_DSN" -c "DROP DATABASE $rdb WITH (FORCE)"
fi
if [ "${FLEET_ROBOTS:-1000}" != 0 ]; then
  "$bin/rpacloud" bench fleet --db "$RPACLOUD_TEST_POSTGRES_DSN" --robots "${FLEET_ROBOTS:-1000}" --rate "${FLEET_RATE:-200}" \
    --task-seconds 2 --duration "${FLEET_DURATION:-60s}" --json 2>/dev/null | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))'
fi
if [ "${BACKLOG:-0}" = 1 ]; then
  "$bin/rpacloud" bench dispatch --db "$RPACLOUD_TEST_POSTGRES_DSN" --backlog --tasks 2000 --robots "$W" --customers 50 --json | compact
  "$bin/rpacloud" bench dispatch --db sqlite --backlog --tasks 2000 --robots "$W" --customers 50 --json | compact
fi
"$bin/rpacloud" bench fairness --json | python3 -c 'import json,sys; d=json.load(sys.stdin); [p.pop("minnows") for p in d["policies"]]; print(json.dumps(d))'
