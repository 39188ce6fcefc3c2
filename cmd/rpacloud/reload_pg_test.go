package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// TestReloadFollowsOnPostgres: two `rpacloud server` on one PostgreSQL.
// Applied on A, the new configuration reaches B: B applies the revision A
// recorded when A's config.applied event arrives, so a plan against B
// shows no change left, even for files that only A was sent.
func TestReloadFollowsOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	base := storetest.PostgresDSN(t)
	bin := sdktest.RpacloudBinary(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("rpt_reload_%d", os.Getpid())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") }()
	u, _ := url.Parse(base)
	u.Path = "/" + name
	const v1 = `
customer "acme" {}

pool "p" {
  provider = "local"
  min      = 0
  max      = 1
}

process "echo" {
  pool    = "p"
  builtin = "echo"
}
`
	a := dashtest.StartOn(t, bin, u.String(), v1)
	b := dashtest.StartOn(t, bin, u.String(), v1)
	// The new commit, deployed to both daemons' files.
	for _, d := range []*dashtest.Daemon{a, b} {
		p := filepath.Join(d.Dir, "rpacloud.hcl")
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		next := strings.Replace(string(raw), `builtin = "echo"`, `builtin = "echo"
  retries = 5`, 1)
		if err := os.WriteFile(p, []byte(next), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := func(d *dashtest.Daemon, args ...string) (string, error) {
		args = append(args, "--config", filepath.Join(d.Dir, "rpacloud.hcl"), "--server", d.Base, "--token", a.Token)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := cli(b, "config", "plan"); err != nil || !strings.Contains(out, "retries: 3 → 5") {
		t.Fatalf("B's plan before: %v\n%s", err, out)
	}
	if out, err := cli(a, "config", "apply", "--yes"); err != nil || !strings.Contains(out, "Applied.") {
		t.Fatalf("apply on A: %v\n%s", err, out)
	}
	eventually(t, 30*time.Second, "B to follow", func() (bool, string) {
		out, err := cli(b, "config", "plan")
		return err == nil && strings.Contains(out, "No changes"), out
	})
	if !strings.Contains(b.Log(), "another daemon applied a configuration") {
		t.Errorf("B's log does not say it followed:\n%s", b.Log())
	}
	// A follows B's follow-up (an empty plan for A, so it ends there), but
	// never its own apply.
	if strings.Contains(a.Log(), `applying it here" event="configuration applied by token admin`) {
		t.Errorf("A followed its own apply:\n%s", a.Log())
	}

	// Files sent to A only (B's own files stay as they are) reach B's
	// running configuration too: B applies the revision A recorded, not
	// its own files.
	onlyA := filepath.Join(t.TempDir(), "rpacloud.hcl")
	raw, err := os.ReadFile(filepath.Join(a.Dir, "rpacloud.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(onlyA, []byte(strings.Replace(string(raw), `retries = 5`, `retries = 7`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	with := func(d *dashtest.Daemon, path string, args ...string) (string, error) {
		args = append(args, "--config", path, "--server", d.Base, "--token", a.Token)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := with(a, onlyA, "config", "apply", "--yes"); err != nil || !strings.Contains(out, "retries: 5 → 7") {
		t.Fatalf("apply on A of files B does not have: %v\n%s", err, out)
	}
	// The same change with B's server block (each daemon keeps its own).
	checkB := filepath.Join(t.TempDir(), "rpacloud.hcl")
	rawB, err := os.ReadFile(filepath.Join(b.Dir, "rpacloud.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(checkB, []byte(strings.Replace(string(rawB), `retries = 5`, `retries = 7`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "B to run A's files", func() (bool, string) {
		out, err := with(b, checkB, "config", "plan")
		return err == nil && strings.Contains(out, "No changes"), out
	})
	if out, err := cli(b, "config", "plan"); err != nil || !strings.Contains(out, "retries: 7 → 5") {
		t.Errorf("B's own files against its running configuration: %v\n%s", err, out)
	}
	if !strings.Contains(b.Log(), "follow revision") {
		t.Errorf("B's log does not name the revision it followed:\n%s", b.Log())
	}
}
