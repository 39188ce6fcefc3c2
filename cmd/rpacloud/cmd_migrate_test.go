package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `rpacloud migrate status` shows a new database's files pending, `apply`
// applies them without a daemon, and status then shows them applied.
func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rpacloud.hcl")
	hcl := fmt.Sprintf("server {\n  listen   = \"127.0.0.1:0\"\n  data_dir = %q\n}\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb := cli("migrate", "status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "_baseline.sql\tpending") {
		t.Fatalf("status of a new database: exit %d, stdout %q, stderr %q; want the baseline pending", code, out, errb)
	}
	code, out, errb = cli("migrate", "apply", "--config", cfg)
	if code != 0 || !strings.Contains(out, "_baseline\t") || !strings.Contains(out, "\tapplied") || strings.Contains(out, "pending") {
		t.Fatalf("apply: exit %d, stdout %q, stderr %q; want the baseline applied, nothing pending", code, out, errb)
	}
	if code, _, errb := cli("migrate", "status"); code != 2 || !strings.Contains(errb, "--config is required") {
		t.Fatalf("status without --config: exit %d, stderr %q; want 2 and the reason", code, errb)
	}
}
