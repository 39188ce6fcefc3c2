package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// rpacloud backup finds the database from --config or --database, refuses
// to overwrite without --force, prints JSON, and explains pg_dump for a
// PostgreSQL configuration without showing its password.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	db, err := store.Open(ctx, store.SQLite, filepath.Join(data, "rpacloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Customer.Create().SetName("acme").ExecX(ctx)
	defer db.Close()
	cfg := filepath.Join(dir, "rpacloud.hcl")
	if err := os.WriteFile(cfg, []byte("server {\n  data_dir = \""+data+"\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "b.db")
	code, out, errs := cli("backup", "--config", cfg, dest)
	if code != exitOK || !strings.Contains(out, "checked") {
		t.Fatalf("backup --config: exit %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("backup", "--database", filepath.Join(data, "rpacloud.db"), dest); code != exitFailure || !strings.Contains(errs, "--force") {
		t.Fatalf("backup over an existing file: exit %d %q", code, errs)
	}
	code, out, errs = cli("backup", "--database", filepath.Join(data, "rpacloud.db"), "--force", "-o", "json", dest)
	var b store.Backup
	if code != exitOK || json.Unmarshal([]byte(out), &b) != nil || b.Rows["customers"] != 1 || b.Path != dest {
		t.Fatalf("backup -o json: exit %d %q %q", code, out, errs)
	}
	if code, _, _ := cli("backup", "--config", cfg, "--database", dest, dest); code != exitUsage {
		t.Fatalf("--config with --database: exit %d, want 2", code)
	}
	pg := filepath.Join(dir, "pg.hcl")
	os.WriteFile(pg, []byte("server {\n  database {\n    driver = \"postgres\"\n    dsn    = \"postgres://rpa:s3cret-pw@db.example:5432/rpacloud\"\n  }\n}\n"), 0o600)
	code, out, errs = cli("backup", "--config", pg, filepath.Join(dir, "pg.db"))
	if code != exitFailure || !strings.Contains(errs, "pg_dump -Fc") || strings.Contains(errs+out, "s3cret-pw") || !strings.Contains(errs, "rpa:xxxxx@db.example") {
		t.Fatalf("backup of a postgres configuration: exit %d %q %q", code, out, errs)
	}
}
