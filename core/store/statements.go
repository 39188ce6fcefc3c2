package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
)

// Statements counts what the daemon sends to its database through ent,
// by kind, so "database statements per task" is a figure of the daemon
// itself on both engines (`rpacloud bench fleet` reads it from /metrics,
// rpacloud_db_statements_total). Every statement of ent, and every raw
// statement run through the client's ExecContext/QueryContext (the
// PostgreSQL fast path of the queue), passes the counting driver; only
// DB.SQL()'s direct users (the health check's ping) and the event relay's
// own connections (LISTEN, and the pg_notify of the events it sends) are
// not counted. Atomics only: counting costs a
// look at the statement's first word.
type Statements struct {
	read, write, other, commit, rollback atomic.Int64
}

// StatementCounts is a reading of Statements. Read is a SELECT; Write an
// INSERT, UPDATE or DELETE, or a WITH whose parts change rows; Other the
// rest (PRAGMA, SET, DDL of the migration); Commit and Rollback are
// transactions ended. A statement outside a transaction commits by
// itself and is not counted under Commit.
type StatementCounts struct {
	Read, Write, Other, Commit, Rollback int64
}

// Counts reads the counters.
func (s *Statements) Counts() StatementCounts {
	if s == nil {
		return StatementCounts{}
	}
	return StatementCounts{Read: s.read.Load(), Write: s.write.Load(), Other: s.other.Load(),
		Commit: s.commit.Load(), Rollback: s.rollback.Load()}
}

// Statements returns the counters of the statements sent through this
// database's ent client.
func (d *DB) Statements() StatementCounts { return d.stmts.Counts() }

func (s *Statements) count(query string) {
	switch classify(query) {
	case kindRead:
		s.read.Add(1)
	case kindWrite:
		s.write.Add(1)
	default:
		s.other.Add(1)
	}
}

type kind int

const (
	kindOther kind = iota
	kindRead
	kindWrite
)

// classify looks at the statement's first word; a WITH (the fast path's
// data-modifying CTEs) is a write when it has a changing part.
func classify(q string) kind {
	q = strings.TrimLeft(q, " \t\r\n(")
	end := strings.IndexAny(q, " \t\r\n(")
	if end < 0 {
		end = len(q)
	}
	switch w := q[:end]; {
	case strings.EqualFold(w, "SELECT"):
		return kindRead
	case strings.EqualFold(w, "INSERT"), strings.EqualFold(w, "UPDATE"), strings.EqualFold(w, "DELETE"), strings.EqualFold(w, "REPLACE"):
		return kindWrite
	case strings.EqualFold(w, "WITH"):
		if changes(q) {
			return kindWrite
		}
		return kindRead
	}
	return kindOther
}

// changes: the statement names INSERT, UPDATE or DELETE anywhere as a word
// (ASCII case ignored; a lock, FOR UPDATE, counts as a change), in one
// pass without copying it.
func changes(q string) bool {
	for i := 0; i+6 <= len(q); i++ {
		var verb string
		switch q[i] | 0x20 {
		case 'i':
			verb = "INSERT"
		case 'u':
			verb = "UPDATE"
		case 'd':
			verb = "DELETE"
		default:
			continue
		}
		if strings.EqualFold(q[i:i+6], verb) && !wordByte(q, i-1) && !wordByte(q, i+6) {
			return true
		}
	}
	return false
}

// wordByte: q[i] exists and is part of a word, so a verb next to it is only
// part of a name (updated_at, deleted).
func wordByte(q string, i int) bool {
	if i < 0 || i >= len(q) {
		return false
	}
	c := q[i]
	return c == '_' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
}

// countingDriver is ent's SQL driver with every statement counted. It
// keeps the methods the generated client looks for (BeginTx, ExecContext,
// QueryContext), so nothing of ent's behaviour changes.
type countingDriver struct {
	*entsql.Driver
	n *Statements
}

var _ dialect.Driver = (*countingDriver)(nil)

func (d *countingDriver) Exec(ctx context.Context, query string, args, v any) error {
	d.n.count(query)
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *countingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.n.count(query)
	return d.Driver.Query(ctx, query, args, v)
}

func (d *countingDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	d.n.count(query)
	return d.Driver.ExecContext(ctx, query, args...)
}

func (d *countingDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	d.n.count(query)
	return d.Driver.QueryContext(ctx, query, args...)
}

func (d *countingDriver) Tx(ctx context.Context) (dialect.Tx, error) { return d.BeginTx(ctx, nil) }

func (d *countingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := d.Driver.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	etx, ok := tx.(*entsql.Tx)
	if !ok {
		_ = tx.Rollback()
		return nil, fmt.Errorf("store: ent returned a transaction of type %T, not *sql.Tx", tx)
	}
	return &countingTx{Tx: etx, n: d.n}, nil
}

// countingTx counts a transaction's statements and its end.
type countingTx struct {
	*entsql.Tx
	n *Statements
}

var _ dialect.Tx = (*countingTx)(nil)

func (t *countingTx) Exec(ctx context.Context, query string, args, v any) error {
	t.n.count(query)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *countingTx) Query(ctx context.Context, query string, args, v any) error {
	t.n.count(query)
	return t.Tx.Query(ctx, query, args, v)
}

func (t *countingTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	t.n.count(query)
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *countingTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	t.n.count(query)
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *countingTx) Commit() error {
	t.n.commit.Add(1)
	return t.Tx.Commit()
}

func (t *countingTx) Rollback() error {
	t.n.rollback.Add(1)
	return t.Tx.Rollback()
}
