package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// startDaemon runs a daemon on dataDir's SQLite database until the
// returned stop is called, and returns its address.
func startDaemon(t *testing.T, dataDir string) (addr string, stop func()) {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"main.hcl": []byte(fmt.Sprintf(`
server {
  listen   = "127.0.0.1:0"
  data_dir = %q
}
pool "p" {
  max = 1
}
process "echo" {
  pool    = "p"
  builtin = "echo"
}
`, dataDir))})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Logger: slog.New(slog.DiscardHandler), Stdout: io.Discard, Ready: ready, SweepInterval: time.Second})
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("daemon on %s: %v", dataDir, err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("daemon not ready within a minute")
	}
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon on %s: %v", dataDir, err)
		}
	}
}

func healthy(t *testing.T, addr string) {
	t.Helper()
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", res.Status)
	}
}

// The restore an operator does: a backup taken while the daemon serves
// and something writes, the daemon stopped, the copy put in place of its
// database (its -wal and -shm removed), the daemon started again: it
// serves, and what was written before the backup is there.
func TestBackupRestoreDaemon(t *testing.T) {
	dataA := t.TempDir()
	addr, stopA := startDaemon(t, dataA)
	healthy(t, addr)

	// A writer beside the daemon, as the daemon's own work would be.
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	w, err := store.Open(ctx, store.SQLite, filepath.Join(dataA, "rpacloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	var wrote atomic.Int64
	wctx, stopW := context.WithCancel(ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for wctx.Err() == nil {
			if err := w.Event.Create().SetType("test.written").SetMessage("before and during the backup").Exec(wctx); err == nil {
				wrote.Add(1)
			}
		}
	}()
	for wrote.Load() < 100 {
		time.Sleep(5 * time.Millisecond)
	}
	backup := filepath.Join(t.TempDir(), "rpacloud-backup.db")
	b, err := store.BackupSQLite(context.Background(), filepath.Join(dataA, "rpacloud.db"), backup, false)
	if err != nil {
		t.Fatal(err)
	}
	stopW()
	<-writerDone
	w.Close()
	stopA()
	if b.Rows["events"] < 100 || b.Rows["pools"] != 1 || b.Rows["tokens"] == 0 {
		t.Fatalf("rows of the backup: %v", b.Rows)
	}

	// Restore into a fresh data directory, as onto a new host.
	dataB := t.TempDir()
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataB, "rpacloud.db"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	addr, stopB := startDaemon(t, dataB)
	healthy(t, addr)
	stopB()
	db, err := store.Open(ctx, store.SQLite, filepath.Join(dataB, "rpacloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.Event.Query().Where(event.Type("test.written")).CountX(ctx); n != b.Rows["events"]-countOther(t, backup) {
		t.Fatalf("restored events: %d, backup had %d of them", n, b.Rows["events"]-countOther(t, backup))
	}
}

// countOther counts the backup's events that the test's writer did not
// write (the daemon's own).
func countOther(t *testing.T, path string) int {
	t.Helper()
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	dir := t.TempDir()
	raw, _ := os.ReadFile(path)
	p := filepath.Join(dir, "x.db")
	os.WriteFile(p, raw, 0o600)
	db, err := store.Open(ctx, store.SQLite, p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.Event.Query().Where(event.TypeNEQ("test.written")).CountX(ctx)
}
