package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// thirdPartyDir is the example third-party vendor plugin: a module of its
// own, which the root module's ./... does not build.
const thirdPartyDir = "../../examples/robocorp-plugin"

// goBuild builds pkg of the module in dir into out.
func goBuild(t *testing.T, dir, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s in %s: %v\n%s", pkg, dir, err, b)
	}
}

// startFakeControlRoom runs the example's fake Control Room and returns
// its API base URL.
func startFakeControlRoom(t *testing.T, bin, apiKey string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "FAKE_CR_API_KEY="+apiKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("fake Control Room: %q %v", line, err)
	}
	return url
}

func writeConfig(t *testing.T, hcl string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func validate(t *testing.T, bin, dir string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, "validate", dir)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

// lineCol is where needle starts in the configuration file of dir, as
// "rpacloud.hcl:LINE:COL".
func lineCol(t *testing.T, dir, needle string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "rpacloud.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if c := strings.Index(l, needle); c >= 0 {
			return fmt.Sprintf("%s:%d:%d", filepath.Join(dir, "rpacloud.hcl"), i+1, c+1)
		}
	}
	t.Fatalf("%q not in the configuration", needle)
	return ""
}

// The done-when for third-party plugins: the example vendor plugin,
// built from its own module into a plugin directory, is accepted by
// `rpacloud validate` through the schema it declares, its misspelt
// attribute is reported at its range with a suggestion, an unknown vendor
// says where it was looked for, a plugin crashing while describing itself
// gets a located error; then a daemon runs a job through it on a robot,
// and its jobs and workers reach the monitor as the built-in vendors' do.
func TestThirdPartyVendorPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rpacloud, the example plugin and its fake API")
	}
	tmp := t.TempDir()
	pluginDir := filepath.Join(tmp, "plugins")
	bin, err := sdktest.BuildRpacloud(tmp)
	if err != nil {
		t.Fatal(err)
	}
	goBuild(t, thirdPartyDir, "./cmd/rpacloud-vendor-robocorp", filepath.Join(pluginDir, "rpacloud-vendor-robocorp"))
	goBuild(t, thirdPartyDir, "./cmd/fake-control-room", filepath.Join(tmp, "fake-control-room"))
	// A provider plugin that panics in Info (the plugin host's fixture).
	goBuild(t, "../..", "./core/pluginhost/testdata/fakeprovider", filepath.Join(pluginDir, "rpacloud-provider-infocrash"))

	b := make([]byte, 8)
	_, _ = rand.Read(b)
	apiKey := "rc-key-" + hex.EncodeToString(b)
	url := startFakeControlRoom(t, filepath.Join(tmp, "fake-control-room"), apiKey, "-workspace", "ws-1",
		"-process", "p-vat=VAT filing", "-worker", "w-1=robocorp-worker-1=online", "-scheduled", "p-vat=unresolved")

	vault := sdktest.SharedVault(t)
	vpath := "rpacloud/vendors/robocorp-" + hex.EncodeToString(b[:4])
	vault.PutSecret(t, vpath, map[string]any{"api_key": apiKey})

	base := `server {
  plugin_dir = "` + pluginDir + `"
}

provider "local" {
  plugin = "local"
}

pool "rc-robots" {
  provider = "local"
  min      = 1
  max      = 1
  period   = "2s"
}

customer "acme" {}

process "rc-vat" {
  pool         = "rc-robots"
  vendor       = "rc"
  package      = "p-vat"
  owner        = "acme"
  credentials  = ["robocorp/prod"]
  max_duration = "2m"
}
`
	vendor := func(attrs string) string {
		return base + `
vendor "rc" {
  type          = "robocorp"
  url           = "` + url + `"
  credentials   = "vault:secret/` + vpath + `#api_key"
  poll_interval = "1s"
` + attrs + `}
`
	}

	good := writeConfig(t, vendor(`  workspace_id  = "ws-1"
`))
	if code, out := validate(t, bin, good); code != 0 || !strings.Contains(out, "1 file OK") {
		t.Fatalf("validate the good configuration: %d\n%s", code, out)
	}

	typo := writeConfig(t, vendor(`  workspce_id   = "ws-1"
`))
	code, out := validate(t, bin, typo)
	for _, want := range []string{lineCol(t, typo, "workspce_id") + ": error: Unsupported argument", `Did you mean "workspace_id"?`,
		`The argument "workspace_id" is required`} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("misspelt attribute: %d, want %q in\n%s", code, want, out)
		}
	}

	unknown := writeConfig(t, strings.Replace(vendor(`  workspace_id  = "ws-1"
`), `type          = "robocorp"`, `type          = "blueprism"`, 1))
	code, out = validate(t, bin, unknown)
	for _, want := range []string{lineCol(t, unknown, `"blueprism"`) + ": error: Unknown vendor plugin",
		`no executable "rpacloud-vendor-blueprism" in plugin directory ` + pluginDir, "built-in vendor plugins: uipath, aa"} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("unknown vendor: %d, want %q in\n%s", code, want, out)
		}
	}

	crash := writeConfig(t, strings.Replace(vendor(`  workspace_id  = "ws-1"
`), `provider "local" {
  plugin = "local"
}`, `provider "local" {
  plugin = "local"
}

provider "other" {
  plugin = "infocrash"
}`, 1))
	code, out = validate(t, bin, crash)
	for _, want := range []string{lineCol(t, crash, `"infocrash"`) + `: error: Cannot read the plugin's schema`,
		"crashed while describing itself", filepath.Join(pluginDir, "rpacloud-provider-infocrash")} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("plugin crashing in Info: %d, want %q in\n%s", code, want, out)
		}
	}
	if strings.Contains(out, "Unsupported argument") || strings.Contains(out, "Unknown") {
		t.Errorf("the rest of the configuration is not as valid as before:\n%s", out)
	}

	// The daemon: the robot of pool rc-robots runs the process's task
	// through the plugin (from the plugin directory), with the API key from
	// the process's credential; the poller sees Control Room's own runs
	// and workers.
	d := sdktest.StartDaemonAt(t, bin, good, "VAULT_ADDR="+vault.Addr, "VAULT_TOKEN="+vault.Token)
	ctx := context.Background()
	var cred strings.Builder
	if code := execute(ctx, []string{"credential", "put", "--server", d.Base, "--token", d.Token, "--customer", "acme",
		"--name", "robocorp/prod", "--from-file", "-", "--process", "rc-vat"},
		strings.NewReader(`{"fields":{"api_key":"`+apiKey+`"}}`), &cred, &cred); code != 0 {
		t.Fatalf("credential put: %d %s", code, cred.String())
	}
	var sub struct {
		SubmitBatch struct{ ID string } `json:"submitBatch"`
	}
	if err := d.Do(ctx, `mutation{submitBatch(input:{process:"rc-vat",customer:"acme",inputs:[{company:"C1"}]}){id}}`, nil, &sub); err != nil {
		t.Fatal(err)
	}
	var task struct {
		Tasks struct {
			Edges []struct {
				Node struct{ State, Output, ErrorMessage string } `json:"node"`
			} `json:"edges"`
		} `json:"tasks"`
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := d.Do(ctx, `query($b:ID!){tasks(where:{batchID:$b}){edges{node{state output errorMessage}}}}`, map[string]any{"b": sub.SubmitBatch.ID}, &task); err != nil {
			t.Fatal(err)
		}
		if n := task.Tasks.Edges; len(n) == 1 && (n[0].Node.State == "succeeded" || n[0].Node.State == "failed") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task did not end: %+v", task)
		}
		time.Sleep(300 * time.Millisecond)
	}
	n := task.Tasks.Edges[0].Node
	if n.State != "succeeded" || !regexp.MustCompile(`"job_id":"run-\d+"`).MatchString(n.Output) || !strings.Contains(n.Output, `"state":"completed"`) {
		t.Fatalf("task through the plugin: %+v", n)
	}

	// The monitor: the scheduler's unresolved run as a vendorjob.faulted
	// event of process rc-vat with its run_faulted anomaly, the worker as a
	// vendorrobot event, all of vendor robocorp.
	var procs struct {
		Processes struct {
			Edges []struct {
				Node struct{ ID string } `json:"node"`
			} `json:"edges"`
		} `json:"processes"`
	}
	if err := d.Do(ctx, `{processes(where:{name:"rc-vat"}){edges{node{id}}}}`, nil, &procs); err != nil || len(procs.Processes.Edges) != 1 {
		t.Fatalf("process: %+v %v", procs, err)
	}
	procID := procs.Processes.Edges[0].Node.ID
	var said []string
	deadline = time.Now().Add(90 * time.Second)
	for {
		var mon struct {
			Events struct {
				Edges []struct {
					Node struct{ Type, Message, ExternalID, ProcessID string } `json:"node"`
				} `json:"edges"`
			} `json:"events"`
			Anomalies struct {
				Edges []struct {
					Node struct{ Title, Message, ProcessID, Vendor string } `json:"node"`
				} `json:"edges"`
			} `json:"anomalies"`
		}
		if err := d.Do(ctx, `{events(first:50,where:{vendor:"robocorp"}){edges{node{type message externalID processID}}}
			anomalies(first:10,where:{rule:run_faulted}){edges{node{title message processID vendor}}}}`, nil, &mon); err != nil {
			t.Fatal(err)
		}
		faulted, robot, anomaly := false, false, false
		for _, e := range mon.Events.Edges {
			said = append(said, e.Node.Message)
			faulted = faulted || (e.Node.Type == "vendorjob.faulted" && e.Node.ProcessID == procID && e.Node.ExternalID != "")
			robot = robot || (strings.HasPrefix(e.Node.Type, "vendorrobot.") && strings.Contains(e.Node.Message, "robocorp-worker-1"))
		}
		for _, a := range mon.Anomalies.Edges {
			said = append(said, a.Node.Title, a.Node.Message)
			anomaly = anomaly || (a.Node.ProcessID == procID && a.Node.Vendor == "robocorp")
		}
		if faulted && robot && anomaly {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor after 90 s: faulted job %v, robot %v, anomaly %v: %+v", faulted, robot, anomaly, mon)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.Stop()
	for where, text := range map[string]string{"the daemon's log": d.Log(), "the API's answers": strings.Join(said, "\n") + n.Output + n.ErrorMessage,
		"validate's output": out} {
		if strings.Contains(text, apiKey) {
			t.Errorf("the API key appears in %s", where)
		}
	}
}

// The daemon checks plugins at start as validate does: a vendor block
// whose plugin exists nowhere, or a built-in's block with an attribute the
// plugin does not declare, stops `rpacloud server` before it opens
// anything, saying where.
func TestServerChecksPluginsAtStart(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	hcl := `server {
  data_dir   = "` + filepath.Join(dir, "data") + `"
  plugin_dir = "` + plugins + `"
}

vendor "bp" {
  type = "blueprism"
  url  = "https://bp.example"
}

vendor "ui" {
  type      = "uipath"
  url       = "https://orch.example"
  client_id = "app"
  scop      = "OR.Jobs"
}
`
	if err := os.WriteFile(filepath.Join(dir, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := runServer(context.Background(), serverOptions{cfgPath: dir}, &stdout, &stderr)
	out := stderr.String()
	for _, want := range []string{"rpacloud.hcl:7:10: error: Unknown vendor plugin", `"rpacloud-vendor-blueprism" in plugin directory ` + plugins,
		"rpacloud.hcl:15:3: error: Unsupported argument", `Did you mean "scope"?`} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("rpacloud server: %d, want %q in\n%s", code, want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("the data directory was created by a start that was refused")
	}
}
