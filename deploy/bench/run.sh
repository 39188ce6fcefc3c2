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
if [ "${BACKLOG:-0}" = 1 ]; then
  "$bin/rpacloud" bench dispatch --db "$RPACLOUD_TEST_POSTGRES_DSN" --backlog --tasks 2000 --robots "$W" --customers 50 --json | compact
  "$bin/rpacloud" bench dispatch --db sqlite --backlog --tasks 2000 --robots "$W" --customers 50 --json | compact
fi
"$bin/rpacloud" bench fairness --json | python3 -c 'import json,sys; d=json.load(sys.stdin); [p.pop("minnows") for p in d["policies"]]; print(json.dumps(d))'
