package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `rpacloud migrate status` refuses a database file that does not exist
// (a mistyped path must not become an empty database), `apply` creates and
// migrates it without a daemon, and status then shows the files applied.
func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rpacloud.hcl")
	hcl := fmt.Sprintf("server {\n  listen   = \"127.0.0.1:0\"\n  data_dir = %q\n}\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "data", "rpacloud.db")
	code, out, errb := cli("migrate", "status", "--config", cfg)
	if code != 1 || !strings.Contains(errb, db) || !strings.Contains(errb, "no such file") {
		t.Fatalf("status of a missing database: exit %d, stdout %q, stderr %q; want 1 naming the file", code, out, errb)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("status created the database")
	}
	code, out, errb = cli("migrate", "apply", "--config", cfg)
	if code != 0 || !strings.Contains(out, "_baseline\t") || !strings.Contains(out, "\tapplied") || strings.Contains(out, "pending") {
		t.Fatalf("apply: exit %d, stdout %q, stderr %q; want the baseline applied, nothing pending", code, out, errb)
	}
	if code, out, errb := cli("migrate", "status", "--config", cfg); code != 0 || !strings.Contains(out, "\tapplied") || strings.Contains(out, "pending") {
		t.Fatalf("status after apply: exit %d, stdout %q, stderr %q", code, out, errb)
	}
	if code, _, errb := cli("migrate", "status"); code != 2 || !strings.Contains(errb, "--config is required") {
		t.Fatalf("status without --config: exit %d, stderr %q; want 2 and the reason", code, errb)
	}
}
