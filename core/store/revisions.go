package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"ariga.io/atlas/sql/migrate"
)

// revisionsDDL creates the table of applied migration files. It is
// bookkeeping beside the schema, not part of it, so no migration file makes
// it; its columns are Atlas's migrate.Revision.
func revisionsDDL(driverName string) string {
	ts := "TEXT"
	if driverName == Postgres {
		ts = "TIMESTAMPTZ"
	}
	return `CREATE TABLE IF NOT EXISTS ` + RevisionsTable + ` (
	version TEXT PRIMARY KEY,
	description TEXT NOT NULL,
	type BIGINT NOT NULL,
	applied BIGINT NOT NULL,
	total BIGINT NOT NULL,
	executed_at ` + ts + ` NOT NULL,
	execution_time BIGINT NOT NULL,
	error TEXT NOT NULL,
	error_stmt TEXT NOT NULL,
	hash TEXT NOT NULL,
	partial_hashes TEXT NOT NULL,
	operator_version TEXT NOT NULL
)`
}

// revisions is Atlas's RevisionReadWriter on the connection the migration
// holds its lock on (and, for SQLite, its transaction).
type revisions struct {
	conn   *sql.Conn
	driver string
	// schema is PostgreSQL's current schema, where the table is: Atlas's
	// check that a database is empty but for it compares schema names.
	schema string
}

var _ migrate.RevisionReadWriter = (*revisions)(nil)

func (r *revisions) Ident() *migrate.TableIdent {
	return &migrate.TableIdent{Name: RevisionsTable, Schema: r.schema}
}

// q turns ? placeholders into PostgreSQL's $n.
func (r *revisions) q(s string) string {
	if r.driver != Postgres {
		return s
	}
	var b strings.Builder
	n := 0
	for _, c := range s {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

const revisionColumns = `version, description, type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version`

func (r *revisions) ReadRevisions(ctx context.Context) ([]*migrate.Revision, error) {
	return r.read(ctx, "")
}

func (r *revisions) ReadRevision(ctx context.Context, version string) (*migrate.Revision, error) {
	revs, err := r.read(ctx, version)
	if err != nil {
		return nil, err
	}
	if len(revs) == 0 {
		return nil, migrate.ErrRevisionNotExist
	}
	return revs[0], nil
}

func (r *revisions) read(ctx context.Context, version string) ([]*migrate.Revision, error) {
	q, args := `SELECT `+revisionColumns+` FROM `+RevisionsTable, []any{}
	if version != "" {
		q, args = q+` WHERE version = ?`, append(args, version)
	}
	rows, err := r.conn.QueryContext(ctx, r.q(q+` ORDER BY version`), args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", RevisionsTable, err)
	}
	defer rows.Close()
	var out []*migrate.Revision
	for rows.Next() {
		var (
			rev              migrate.Revision
			typ              uint
			at               any
			execNS           int64
			partial          string
			applied, total64 int64
		)
		if err := rows.Scan(&rev.Version, &rev.Description, &typ, &applied, &total64, &at, &execNS,
			&rev.Error, &rev.ErrorStmt, &rev.Hash, &partial, &rev.OperatorVersion); err != nil {
			return nil, fmt.Errorf("read %s: %w", RevisionsTable, err)
		}
		rev.Type, rev.Applied, rev.Total = migrate.RevisionType(typ), int(applied), int(total64)
		rev.ExecutionTime = time.Duration(execNS)
		switch v := at.(type) {
		case time.Time:
			rev.ExecutedAt = v
		case string:
			rev.ExecutedAt, _ = time.Parse(time.RFC3339Nano, v)
		}
		if partial != "" {
			if err := json.Unmarshal([]byte(partial), &rev.PartialHashes); err != nil {
				return nil, fmt.Errorf("read %s: revision %s: partial hashes: %w", RevisionsTable, rev.Version, err)
			}
		}
		out = append(out, &rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", RevisionsTable, err)
	}
	return out, nil
}

func (r *revisions) WriteRevision(ctx context.Context, rev *migrate.Revision) error {
	// Atlas's executor records its progress after every statement, so that
	// a file interrupted half-way resumes where it stopped. Here a file
	// runs in a transaction and never stops half-way, so only the finished
	// revision is written: one statement per file instead of one per
	// statement (it made opening a fresh PostgreSQL database 3 times slower).
	if rev.Applied < rev.Total {
		return nil
	}
	partial := ""
	if len(rev.PartialHashes) > 0 {
		b, err := json.Marshal(rev.PartialHashes)
		if err != nil {
			return err
		}
		partial = string(b)
	}
	var at any = rev.ExecutedAt.UTC()
	if r.driver != Postgres {
		at = rev.ExecutedAt.UTC().Format(time.RFC3339Nano)
	}
	_, err := r.conn.ExecContext(ctx, r.q(`INSERT INTO `+RevisionsTable+` (`+revisionColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (version) DO UPDATE SET description = excluded.description, type = excluded.type,
	applied = excluded.applied, total = excluded.total, executed_at = excluded.executed_at,
	execution_time = excluded.execution_time, error = excluded.error, error_stmt = excluded.error_stmt,
	hash = excluded.hash, partial_hashes = excluded.partial_hashes, operator_version = excluded.operator_version`),
		rev.Version, rev.Description, int64(rev.Type), int64(rev.Applied), int64(rev.Total), at,
		int64(rev.ExecutionTime), rev.Error, rev.ErrorStmt, rev.Hash, partial, rev.OperatorVersion)
	if err != nil {
		return fmt.Errorf("write %s: revision %s: %w", RevisionsTable, rev.Version, err)
	}
	return nil
}

func (r *revisions) DeleteRevision(ctx context.Context, version string) error {
	_, err := r.conn.ExecContext(ctx, r.q(`DELETE FROM `+RevisionsTable+` WHERE version = ?`), version)
	if err != nil {
		return fmt.Errorf("delete %s: revision %s: %w", RevisionsTable, version, err)
	}
	return nil
}

// Revision is one applied migration file, for `rpacloud migrate status`.
type Revision struct {
	Version, Description string
	// Baseline: the file was not run but found already applied, on a
	// database made by the release before versioned migrations.
	Baseline   bool
	ExecutedAt time.Time
}

// MigrationStatus lists the migration files applied to the database and
// the names of those this binary would still apply.
func MigrationStatus(ctx context.Context, db *sql.DB, driverName string) (applied []Revision, pending []string, err error) {
	dir, err := MigrationDir(driverName)
	if err != nil {
		return nil, nil, err
	}
	files, err := dir.Files()
	if err != nil {
		return nil, nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	revs, err := (&revisions{conn: conn, driver: driverName}).ReadRevisions(ctx)
	if err != nil && !isNoTable(err) {
		return nil, nil, err
	}
	done := map[string]bool{}
	for _, r := range revs {
		done[r.Version] = r.Applied == r.Total
		applied = append(applied, Revision{Version: r.Version, Description: r.Description,
			Baseline: r.Type.Has(migrate.RevisionTypeBaseline), ExecutedAt: r.ExecutedAt})
	}
	for _, f := range files {
		if !done[f.Version()] {
			pending = append(pending, f.Name())
		}
	}
	return applied, pending, nil
}

// isNoTable tells a missing revisions table (a database never migrated by
// this release) from a failure.
func isNoTable(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		s := e.Error()
		if strings.Contains(s, "no such table") || strings.Contains(s, "does not exist") {
			return true
		}
	}
	return false
}
