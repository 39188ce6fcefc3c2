// Package dashtest starts a real rpacloud daemon (the binary, with the local
// provider's robot processes) for the dashboard's browser, Node and latency
// tests. It is imported by tests only.
package dashtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds the rpacloud binary once per test process, into dir (which
// the caller removes at the end of TestMain).
func Binary(dir string) (string, error) {
	buildOnce.Do(func() { binPath, buildErr = sdktest.BuildRpacloud(dir) })
	return binPath, buildErr
}

// Daemon is a running `rpacloud server`.
type Daemon struct {
	Base  string // http://127.0.0.1:port
	Token string // admin token
	Dir   string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	done  chan error
}

// Start runs `rpacloud server` on a configuration made of the server block
// it writes itself plus extra (pools, processes, monitor, ...), and waits
// until it serves.
func Start(t *testing.T, bin, extra string) *Daemon {
	t.Helper()
	return StartOn(t, bin, "", extra)
}

// StartOn is Start on the PostgreSQL database dsn (SQLite when empty).
func StartOn(t *testing.T, bin, dsn, extra string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	addr := sdktest.FreeAddr(t)
	db := `driver = "sqlite"`
	if dsn != "" {
		db = fmt.Sprintf("driver = \"postgres\"\n    dsn    = %q", dsn)
	}
	cfg := fmt.Sprintf(`server {
  listen   = %q
  data_dir = %q
  database {
    %s
  }
}

provider "local" {
  plugin = "local"
}
%s`, addr, dir, db, extra)
	if err := os.WriteFile(filepath.Join(dir, "rpacloud.hcl"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Base: "http://" + addr, Dir: dir, log: &bytes.Buffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(bin, "server", "--config", filepath.Join(dir, "rpacloud.hcl"), "--log-format", "text")
	lw := &lockedWriter{w: d.log}
	d.cmd.Stdout, d.cmd.Stderr = lw, lw
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.Stop(t) })
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(d.Base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not serve within 90s: %v\n%s", err, d.Log())
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited: %v\n%s", err, d.Log())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// A second daemon on a shared database finds an admin token there and
	// makes none: its Token stays empty, use the first one's.
	raw, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	d.Token = strings.TrimSpace(string(raw))
	return d
}

// Client is an admin GraphQL client.
func (d *Daemon) Client() *gqlclient.Client { return gqlclient.New(d.Base, d.Token) }

// Log returns what the daemon wrote so far.
func (d *Daemon) Log() string {
	lw := d.cmd.Stdout.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return d.log.String()
}

// Stop ends the daemon and every robot process it started.
func (d *Daemon) Stop(t *testing.T) {
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
	for pid := range Procs("robot", "--server", d.Base) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.Log())
	}
}

// RobotPID returns the process id of the named robot of this daemon.
func (d *Daemon) RobotPID(name string) (int, bool) {
	for pid := range Procs("robot", "--server", d.Base, "--name "+name+" ") {
		return pid, true
	}
	return 0, false
}

// Submit queues one batch.
func (d *Daemon) Submit(ctx context.Context, process, customer string, inputs ...map[string]any) error {
	var out struct{ SubmitBatch struct{ ID string } }
	return d.Client().Do(ctx, `mutation($p:String!,$c:String,$in:[JSON!]!){submitBatch(input:{process:$p,customer:$c,inputs:$in}){id}}`,
		map[string]any{"p": process, "c": customer, "in": inputs}, &out)
}

// Procs lists live processes whose command line contains every needle.
func Procs(needles ...string) map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(raw), "\x00", " ") + " "
		match := true
		for _, n := range needles {
			if !strings.Contains(cmd, n) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err == nil && !bytes.Contains(stat[bytes.LastIndexByte(stat, ')')+1:], []byte(" Z ")) {
			out[pid] = true
		}
	}
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
