package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Backup is what BackupSQLite wrote and checked.
type Backup struct {
	Path  string         `json:"path"`
	Bytes int64          `json:"bytes"`
	Rows  map[string]int `json:"rows"` // rows per table of the copy
	// DanglingRows counts (up to 1000) rows of the copy that refer to a
	// missing row: VACUUM INTO copies what the source holds, so they are
	// the source's too (left by an old release; migrations tolerate those
	// that exist). Reported, not refused: a database with one old dangling
	// row must still be backed up.
	DanglingRows int           `json:"dangling_rows,omitempty"`
	Took         time.Duration `json:"took_ns"`
}

// ErrBackupExists: the destination exists and Force was not given.
var ErrBackupExists = errors.New("destination exists")

// BackupSQLite copies the SQLite database file src to dst while a daemon
// may be using it: SQLite's VACUUM INTO writes one consistent snapshot of
// the database (a read transaction: WAL lets the daemon's writer carry on)
// through the same driver the daemon uses. The copy is written to a
// temporary file in dst's directory with mode 0600 (it holds token hashes
// and the audit trail), checked (PRAGMA integrity_check, foreign keys,
// rows per table), synced, and only then renamed to dst, so dst is never
// half-written. An existing dst is refused unless force.
func BackupSQLite(ctx context.Context, src, dst string, force bool) (*Backup, error) {
	start := time.Now()
	if st, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("backup: database %s: %w", src, err)
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("backup: database %s is not a regular file", src)
	}
	if _, err := os.Lstat(dst); err == nil && !force {
		return nil, fmt.Errorf("backup: %s: %w (use --force to replace it)", dst, ErrBackupExists)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("backup: %s: %w", dst, err)
	}
	if same, _ := samePath(src, dst); same {
		return nil, fmt.Errorf("backup: %s is the database itself", dst)
	}
	dir := filepath.Dir(dst)
	// An empty file made here with mode 0600: VACUUM INTO fills an empty
	// file and keeps its mode, so the copy is never readable by others,
	// whatever the umask.
	tmpf, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("backup: temporary file in %s: %w", dir, err)
	}
	tmp := tmpf.Name()
	tmpf.Close()
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o600); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}

	db, err := openSQLiteFile(src)
	if err != nil {
		return nil, err
	}
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp)
	db.Close()
	if err != nil {
		return nil, fmt.Errorf("backup: copy %s: %w", src, err)
	}
	rows, dangling, err := checkSQLite(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("backup: the copy of %s failed its check: %w", src, err)
	}
	if err := syncFile(tmp); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself survives a crash
		d.Close()
	}
	st, err := os.Stat(dst)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	return &Backup{Path: dst, Bytes: st.Size(), Rows: rows, DanglingRows: dangling, Took: time.Since(start)}, nil
}

// openSQLiteFile opens an existing database file without creating it and
// without changing its journal mode: a busy timeout only, so a copy waits
// for the daemon's checkpoint rather than failing.
func openSQLiteFile(path string) (*sql.DB, error) {
	registerDriver()
	// The path is escaped: a "?", "#" or "%" in it would otherwise start
	// the URI's query or fragment.
	db, err := sql.Open(sqliteDriverName, "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(10000)&mode=rw")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// checkSQLite checks a database file as SQLite can and counts the rows of
// each table.
func checkSQLite(ctx context.Context, path string) (map[string]int, int, error) {
	db, err := openSQLiteFile(path)
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil {
		return nil, 0, fmt.Errorf("integrity check: %w", err)
	}
	if ok != "ok" {
		return nil, 0, fmt.Errorf("integrity check: %s", ok)
	}
	fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return nil, 0, fmt.Errorf("foreign key check: %w", err)
	}
	dangling := 0
	for dangling < 1000 && fk.Next() {
		dangling++
	}
	fk.Close()
	var tables []string
	rs, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
	if err != nil {
		return nil, 0, fmt.Errorf("list tables: %w", err)
	}
	for rs.Next() {
		var n string
		if err := rs.Scan(&n); err != nil {
			rs.Close()
			return nil, 0, err
		}
		tables = append(tables, n)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, 0, err
	}
	if len(tables) == 0 {
		return nil, 0, errors.New("no tables: not an rpacloud database")
	}
	sort.Strings(tables)
	rows := map[string]int{}
	for _, t := range tables {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(t, `"`, `""`)+`"`).Scan(&n); err != nil {
			return nil, 0, fmt.Errorf("count %s: %w", t, err)
		}
		rows[t] = n
	}
	return rows, dangling, nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func samePath(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
