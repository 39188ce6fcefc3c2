// Package devdaemon runs a real `rpacloud dev` for the vendor plugins'
// end-to-end tests: the binary built from this tree, a configuration
// directory with the test's HCL, its own data directory and address, and
// the environment the test gives (VAULT_ADDR and VAULT_TOKEN of a real
// Vault).
package devdaemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/gqlclient"
)

// Daemon is a running `rpacloud dev`.
type Daemon struct {
	Base    string // http://127.0.0.1:PORT
	GQL     *gqlclient.Client
	logPath string
	stop    func()
}

// Start builds rpacloud, writes hcl as the configuration and starts the
// daemon; it returns once the daemon serves and its admin token exists.
// The daemon is stopped (SIGINT) when the test ends, and its log is
// printed if the test failed.
func Start(t *testing.T, hcl string, env ...string) *Daemon {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..", "..", "..")
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "rpacloud")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rpacloud")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgDir := filepath.Join(tmp, "config")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := &Daemon{Base: "http://" + addr, logPath: filepath.Join(tmp, "daemon.log")}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(tmp, "data")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "dev", "--config", cfgDir, "--data-dir", dataDir, "--listen", addr)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		t.Fatal(err)
	}
	stopped := false
	d.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			_ = cmd.Wait()
			logf.Close()
		}
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			b := []byte(d.Log())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("daemon log (tail):\n%s", b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		// Once the daemon has bound its address a request waits until it
		// serves, which may be before the token exists: every answer's
		// body is closed, or its connection stays behind (goleak).
		resp, herr := http.Get(d.Base + "/healthz")
		if herr == nil {
			resp.Body.Close()
		}
		if err == nil && herr == nil {
			d.GQL = gqlclient.New(d.Base, strings.TrimSpace(string(b)))
			return d
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not come up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the daemon and waits for it; later calls do nothing.
func (d *Daemon) Stop() { d.stop() }

// Log is what the daemon has written so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// Fault is what a faulted vendor job became in the monitoring model.
type Fault struct {
	Event struct {
		Type, Message, Vendor, ExternalID, ProcessID string
	}
	Anomaly struct {
		Rule, Status, Title, Message, ProcessID string
	}
	// Said is every text the API answered with along the way, for secret
	// checks.
	Said []string
}

// WaitFault waits (up to 90 s) until a vendorjob.faulted event of vendor
// type vendor and an open run_faulted anomaly are there, then checks both
// are linked to process and name fault.
func (d *Daemon) WaitFault(t *testing.T, vendor, process, fault string) *Fault {
	t.Helper()
	ctx := context.Background()
	var procs struct {
		Processes struct {
			Edges []struct {
				Node struct{ ID string } `json:"node"`
			} `json:"edges"`
		} `json:"processes"`
	}
	if err := d.GQL.Do(ctx, `query($n:String!){processes(where:{name:$n}){edges{node{id}}}}`, map[string]any{"n": process}, &procs); err != nil || len(procs.Processes.Edges) != 1 {
		t.Fatalf("process %s: %+v %v", process, procs, err)
	}
	procID := procs.Processes.Edges[0].Node.ID
	f := &Fault{}
	gotEvent, gotAnomaly := false, false
	deadline := time.Now().Add(90 * time.Second)
	for !gotEvent || !gotAnomaly {
		var out struct {
			Events struct {
				Edges []struct {
					Node struct {
						Type, Message, Vendor, ExternalID, ProcessID string
					} `json:"node"`
				} `json:"edges"`
			} `json:"events"`
			Anomalies struct {
				Edges []struct {
					Node struct {
						Rule, Status, Title, Message, ProcessID string
					} `json:"node"`
				} `json:"edges"`
			} `json:"anomalies"`
		}
		err := d.GQL.Do(ctx, `query($v:String!){events(first:50,where:{vendor:$v}){edges{node{type message vendor externalID processID}}}
			anomalies(first:10,where:{rule:run_faulted}){edges{node{rule status title message processID}}}}`, map[string]any{"v": vendor}, &out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events.Edges {
			f.Said = append(f.Said, e.Node.Message)
			if e.Node.Type == "vendorjob.faulted" {
				f.Event = e.Node
				gotEvent = true
			}
		}
		for _, a := range out.Anomalies.Edges {
			f.Said = append(f.Said, a.Node.Title, a.Node.Message)
			f.Anomaly = a.Node
			gotAnomaly = true
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: faulted job event %v %+v, run_faulted anomaly %v %+v", gotEvent, f.Event, gotAnomaly, f.Anomaly)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if f.Event.ProcessID != procID || f.Event.ExternalID == "" || !strings.Contains(f.Event.Message, fault) {
		t.Errorf("faulted job event %+v: want it linked to process %s (%s), with the job's ID and %q", f.Event, process, procID, fault)
	}
	if f.Anomaly.ProcessID != procID || f.Anomaly.Status != "open" || !strings.Contains(f.Anomaly.Title+f.Anomaly.Message, fault) {
		t.Errorf("anomaly %+v: want an open run_faulted of process %s naming %q", f.Anomaly, process, fault)
	}
	return f
}

// Secret stores a fresh random value under field at a fresh path
// rpacloud/vendors/NAME-XXXX of the Vault's KV v2 "secret" mount, and
// returns the path (without the mount) and the value.
func Secret(t *testing.T, v *vaulttest.Vault, name, field string) (path, value string) {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	value = name + "-secret-" + hex.EncodeToString(b)
	path = "rpacloud/vendors/" + name + "-" + hex.EncodeToString(b[:4])
	if _, err := v.Client(t).KVv2("secret").Put(context.Background(), path, map[string]any{field: value}); err != nil {
		t.Fatalf("store the vendor secret in Vault: %v", err)
	}
	return path, value
}

// CheckNoSecret stops the daemon and fails the test when secret appears
// in its log or in what the API answered.
func (d *Daemon) CheckNoSecret(t *testing.T, secret string, f *Fault) {
	t.Helper()
	d.Stop()
	for where, text := range map[string]string{"the daemon's log": d.Log(), "the API's answers": strings.Join(f.Said, "\n")} {
		if strings.Contains(text, secret) {
			t.Errorf("the vendor secret appears in %s", where)
		}
	}
}

// Config is a daemon configuration with one local pool "vendor-robots",
// one customer "acme", and the given vendor and process blocks (the
// process belongs in that pool and to that customer).
func Config(vendor, process string) string {
	return `provider "local" {
  plugin = "local"
}

pool "vendor-robots" {
  provider = "local"
  min      = 0
  max      = 2
  period   = "10s"
}

customer "acme" {
  display_name = "ACME"
}

` + vendor + "\n" + process
}
