package uipath_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/plugins/vendors/uipath/internal/fakeorch"
)

// TestDaemonMonitorsOrchestrator runs the whole path a vendor-started run
// takes to the wall screen: `rpacloud dev` with a `vendor` block, its OAuth
// secret in a real Vault, the uipath plugin in its own process polling a
// fake Orchestrator over HTTP. A job that Orchestrator's own schedule
// started and that faulted must become a vendorjob event linked to the
// process whose package it ran, and a run_faulted anomaly with the fault;
// the secret must appear nowhere in what the daemon says.
func TestDaemonMonitorsOrchestrator(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	v := vaulttest.Shared(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	secret := "orch-secret-" + hex.EncodeToString(b)
	vpath := "rpacloud/vendors/orch-" + hex.EncodeToString(b[:4])
	if _, err := v.Client(t).KVv2("secret").Put(context.Background(), vpath, map[string]any{"client_secret": secret}); err != nil {
		t.Fatalf("store the vendor secret in Vault: %v", err)
	}

	f := fakeorch.New("rpacloud-monitor", secret, 42)
	t.Cleanup(f.Close)
	f.FolderPath = "Production"
	f.AddRelease(fakeorch.Release{Key: "5b8a3c2e-0d1f-4b5a-9c7e-1a2b3c4d5e6f", Name: "TaxFiling.VAT", ProcessKey: "TaxFiling.VAT",
		Script: []string{"Pending", "Running", "Faulted"}, Info: "System.Exception: the e-tax portal refused the login"})
	f.AddSession(fakeorch.Session{ID: 1, RobotID: 11, RobotName: "tax-robot-1", MachineName: "VM-1", State: "Busy"})
	// Started by Orchestrator's own trigger, not by rpacloud, and faulted.
	f.AddJobs("TaxFiling.VAT", 1, "Faulted")

	tmp := t.TempDir()
	bin := filepath.Join(tmp, "rpacloud")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/rpacloud").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgDir := filepath.Join(tmp, "config")
	_ = os.Mkdir(cfgDir, 0o755)
	hcl := `provider "local" {
  plugin = "local"
}

pool "ui-robots" {
  provider = "local"
  min      = 0
  max      = 2
  period   = "10s"
}

customer "acme" {
  display_name = "ACME"
}

vendor "orch" {
  type          = "uipath"
  url           = "` + f.URL + `"
  token_url     = "` + f.URL + `/identity_/connect/token"
  folder        = "Production"
  client_id     = "rpacloud-monitor"
  credentials   = "vault:secret/` + vpath + `#client_secret"
  poll_interval = "1s"
}

process "vat-filing" {
  pool         = "ui-robots"
  vendor       = "orch"
  package      = "TaxFiling.VAT"
  owner        = "acme"
  max_duration = "5m"
}
`
	if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr
	dataDir := filepath.Join(tmp, "data")
	logPath := filepath.Join(tmp, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	daemon := exec.CommandContext(ctx, bin, "dev", "--config", cfgDir, "--data-dir", dataDir, "--listen", addr)
	daemon.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token)
	daemon.Stdout, daemon.Stderr = logf, logf
	daemon.Cancel = func() error { return daemon.Process.Signal(os.Interrupt) }
	daemon.WaitDelay = 30 * time.Second
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			_ = daemon.Wait()
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("daemon log (tail):\n%s", b)
		}
	}()

	var token string
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		if resp, herr := http.Get(base + "/healthz"); err == nil && herr == nil {
			resp.Body.Close()
			token = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not come up")
		}
		time.Sleep(200 * time.Millisecond)
	}
	gql := gqlclient.New(base, token)
	var responses []string

	var procs struct {
		Processes struct {
			Edges []struct {
				Node struct{ ID string } `json:"node"`
			} `json:"edges"`
		} `json:"processes"`
	}
	if err := gql.Do(ctx, `{processes(where:{name:"vat-filing"}){edges{node{id}}}}`, nil, &procs); err != nil || len(procs.Processes.Edges) != 1 {
		t.Fatalf("process vat-filing: %+v %v", procs, err)
	}
	procID := procs.Processes.Edges[0].Node.ID

	type event struct {
		Type       string `json:"type"`
		Message    string `json:"message"`
		Vendor     string `json:"vendor"`
		ExternalID string `json:"externalID"`
		ProcessID  string `json:"processID"`
	}
	type anomaly struct {
		Rule      string `json:"rule"`
		Status    string `json:"status"`
		Title     string `json:"title"`
		Message   string `json:"message"`
		ProcessID string `json:"processID"`
	}
	var faulted *event
	var found *anomaly
	deadline = time.Now().Add(90 * time.Second)
	for faulted == nil || found == nil {
		var out struct {
			Events struct {
				Edges []struct {
					Node event `json:"node"`
				} `json:"edges"`
			} `json:"events"`
			Anomalies struct {
				Edges []struct {
					Node anomaly `json:"node"`
				} `json:"edges"`
			} `json:"anomalies"`
		}
		err := gql.Do(ctx, `{events(first:50,where:{vendor:"uipath"}){edges{node{type message vendor externalID processID}}}
			anomalies(first:10,where:{rule:run_faulted}){edges{node{rule status title message processID}}}}`, nil, &out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.Events.Edges {
			responses = append(responses, e.Node.Message)
			if e.Node.Type == "vendorjob.faulted" {
				ev := e.Node
				faulted = &ev
			}
		}
		for _, a := range out.Anomalies.Edges {
			responses = append(responses, a.Node.Title, a.Node.Message)
			an := a.Node
			found = &an
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: faulted job event %+v, run_faulted anomaly %+v", faulted, found)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if faulted.ProcessID != procID || faulted.ExternalID == "" || !strings.Contains(faulted.Message, "refused the login") {
		t.Errorf("faulted job event %+v: want it linked to process %s, with the job's ID and its fault", faulted, procID)
	}
	if found.ProcessID != procID || found.Status != "open" || !strings.Contains(found.Title+found.Message, "refused the login") {
		t.Errorf("anomaly %+v: want an open run_faulted of process %s naming the fault", found, procID)
	}
	// The poller authenticated with the secret from Vault, in the folder
	// the block names.
	if f.TokenRequests() == 0 {
		t.Error("the plugin never asked the fake Orchestrator for a token")
	}

	stop()
	logb, _ := os.ReadFile(logPath)
	for where, text := range map[string]string{"the daemon's log": string(logb), "the API's answers": strings.Join(responses, "\n")} {
		if strings.Contains(text, secret) {
			t.Errorf("the vendor secret appears in %s", where)
		}
	}
}
