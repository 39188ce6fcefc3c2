#!/usr/bin/env bash
# Remakes the upgrade test's fixtures with the release before versioned
# migrations (d835a5a): its source from git (git archive, no worktree), the
# program mkfixture/ copied into it and run there, so ent's auto-migration
# of that release makes the schema and that release's code writes the rows.
#
#   bash .ci/services.sh bash core/store/testdata/upgrade/make.sh
#
# (from the repository root; .ci/services.sh provides the PostgreSQL.)
# Writes here: prev.sqlite.gz, prev.postgres.sql (pg_dump --no-owner
# --inserts), and
# the row counts of each, counts.sqlite.json and counts.postgres.json.
set -euo pipefail
REV=d835a5a
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${RPACLOUD_TEST_POSTGRES_DSN:?run through .ci/services.sh, which starts a PostgreSQL}"
WORK="$(mktemp -d /tmp/rpacloud-upgrade-fixture.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
git -C "$HERE/../../../.." archive "$REV" | tar -x -C "$WORK"
cp -r "$HERE/mkfixture" "$WORK/mkfixture"
cd "$WORK"

go run ./mkfixture sqlite "$WORK/prev.sqlite" "$HERE/counts.sqlite.json"
# One file: fold the WAL into the database before copying it.
python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.execute("PRAGMA journal_mode=DELETE"); c.close()' "$WORK/prev.sqlite"
gzip -9n <"$WORK/prev.sqlite" >"$HERE/prev.sqlite.gz"

DB="rpacloud_upgrade_fixture_$$"
ADMIN="$RPACLOUD_TEST_POSTGRES_DSN"
psql -q "$ADMIN" -c "CREATE DATABASE $DB"
trap 'psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true; rm -rf "$WORK"' EXIT
DSN="${ADMIN%%\?*}"; DSN="${DSN%/*}/$DB"; case "$ADMIN" in *\?*) DSN="$DSN?${ADMIN#*\?}";; esac
go run ./mkfixture postgres "$DSN" "$HERE/counts.postgres.json"
# --inserts: plain statements, so the test restores it through database/sql.
pg_dump --no-owner --no-privileges --no-comments --inserts "$DSN" >"$HERE/prev.postgres.sql"
ls -l "$HERE"
