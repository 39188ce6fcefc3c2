package config_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

// fakePlugins stands in for the wiring's plugin lookup: the built-ins as
// they declare themselves, plus whatever a test adds.
type fakePlugins struct {
	schemas map[string][]config.PluginAttribute // "kind/name"
	broken  map[string]error
	calls   atomic.Int32
	mu      sync.Mutex // the loader asks about plugins concurrently
	dirs    []string
}

func newFakePlugins() *fakePlugins {
	return &fakePlugins{schemas: map[string][]config.PluginAttribute{
		"provider/local": {{Name: "robot_command", Type: "string"}, {Name: "state_dir", Type: "string"},
			{Name: "stop_robots_on_exit", Type: "bool"}, {Name: "max_instances", Type: "number"}},
		"crawler/browser": {{Name: "chromium", Type: "string"}, {Name: "step_timeout", Type: "duration"}},
		"crawler/http":    {{Name: "step_timeout", Type: "duration"}, {Name: "user_agent", Type: "string"}},
		"vendor/uipath": {{Name: "url", Type: "string", Required: true}, {Name: "token_url", Type: "string"},
			{Name: "client_id", Type: "string", Required: true}, {Name: "client_secret", Type: "string", Required: true, Sensitive: true},
			{Name: "scope", Type: "string"}, {Name: "folder_id", Type: "string"}, {Name: "folder", Type: "string"},
			{Name: "tenant", Type: "string"}, {Name: "max_retries", Type: "number"}},
		"vendor/aa": {{Name: "url", Type: "string", Required: true}, {Name: "username", Type: "string", Required: true},
			{Name: "api_key", Type: "string", Sensitive: true}, {Name: "password", Type: "string", Sensitive: true},
			{Name: "run_as_user_ids", Type: "list"}, {Name: "pool_ids", Type: "list"}, {Name: "max_retries", Type: "number"}},
	}, broken: map[string]error{}}
}

func (f *fakePlugins) PluginSchema(_ context.Context, srv config.Server, kind, name string) ([]config.PluginAttribute, error) {
	f.calls.Add(1)
	dir := srv.PluginDirectory()
	f.mu.Lock()
	f.dirs = append(f.dirs, dir)
	f.mu.Unlock()
	if err := f.broken[kind+"/"+name]; err != nil {
		return nil, err
	}
	s, ok := f.schemas[kind+"/"+name]
	if !ok {
		return nil, fmt.Errorf("%w: no executable \"rpacloud-%s-%s\" in plugin directory %s", config.ErrPluginNotFound, kind, name, dir)
	}
	return s, nil
}

func loadPlugins(t *testing.T, p config.PluginSchemas, src string) (*config.Config, []string, string) {
	t.Helper()
	cfg, diags, files := config.LoadSourcesWith(context.Background(), p, map[string][]byte{"v.hcl": []byte(src)})
	var b strings.Builder
	if err := config.WriteDiagnostics(&b, files, diags); err != nil {
		t.Fatal(err)
	}
	return cfg, problems(diags), b.String()
}

const rcPool = `
server { plugin_dir = "/opt/rpacloud/plugins" }
provider "local" { plugin = "local" }
pool "p" {
  provider = "local"
  max      = 2
}
process "x" {
  pool    = "p"
  vendor  = "rc"
  package = "invoices"
}
`

// A third-party vendor is accepted by what its plugin declares: its
// attributes reach the plugin in string form, a list as the
// comma-separated text the SDK documents, and each plugin is asked once
// with the configuration's plugin directory.
func TestThirdPartyVendorByItsSchema(t *testing.T) {
	f := newFakePlugins()
	f.schemas["vendor/robocorp"] = []config.PluginAttribute{
		{Name: "workspace_id", Type: "string", Required: true},
		{Name: "api_key", Type: "string", Required: true, Sensitive: true},
		{Name: "process_ids", Type: "list"},
		{Name: "page_size", Type: "number"},
		{Name: "verify", Type: "bool"},
		{Name: "call_timeout", Type: "duration"},
		{Name: "signing", Type: "string", Sensitive: true}, // a secret whatever its name
	}
	cfg, got, _ := loadPlugins(t, f, rcPool+`
vendor "rc" {
  type          = "robocorp"
  url           = "https://cloud.robocorp.com/api/v1"
  workspace_id  = "ws-1"
  credentials   = "vault:secret/rpacloud/vendors/rc#api_key"
  process_ids   = ["p-1", "p-2"]
  page_size     = 50
  verify        = true
  call_timeout  = "20s"
  signing       = "vault:secret/rpacloud/vendors/rc#signing"
  poll_interval = "5s"
}
vendor "rc2" {
  type         = "robocorp"
  url          = "https://cloud.robocorp.com/api/v1"
  workspace_id = "ws-2"
  process_ids  = "p-3,p-4"
}
`)
	if len(got) != 0 {
		t.Fatalf("diagnostics: %q", got)
	}
	want := map[string]string{"workspace_id": "ws-1", "process_ids": "p-1,p-2", "page_size": "50", "verify": "true",
		"call_timeout": "20s", "signing": "vault:secret/rpacloud/vendors/rc#signing", "poll_interval": "5s"}
	if g := cfg.Vendors[0].Extra; fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("extra = %v, want %v", g, want)
	}
	if g := cfg.Vendors[1].Extra["process_ids"]; g != "p-3,p-4" {
		t.Errorf("process_ids as a string = %q", g)
	}
	if n := f.calls.Load(); n != 2 { // robocorp and local, each once
		t.Errorf("%d schema look-ups, want 2", n)
	}
	for _, d := range f.dirs {
		if d != "/opt/rpacloud/plugins" {
			t.Errorf("looked in %q", d)
		}
	}
}

// Bad bodies are reported where they are written: a misspelt attribute
// with HCL's suggestion (a plugin's or the block's own), a wrong type, a
// missing required attribute, a secret declared Sensitive given as a
// literal (masked in the printed line), a bad duration.
func TestPluginBodyDiagnostics(t *testing.T) {
	f := newFakePlugins()
	f.schemas["vendor/robocorp"] = []config.PluginAttribute{
		{Name: "workspace_id", Type: "string", Required: true},
		{Name: "api_key", Type: "string", Sensitive: true},
		{Name: "page_size", Type: "number"},
		{Name: "call_timeout", Type: "duration"},
		{Name: "signing", Type: "string", Sensitive: true},
	}
	_, got, text := loadPlugins(t, f, rcPool+`
vendor "rc" {
  type          = "robocorp"
  url           = "https://cloud.robocorp.com/api/v1"
  workspce_id   = "ws-1"
  tenat         = "x"
  page_size     = "many"
  call_timeout  = "20"
  signing       = "hunter2-literal"
  api_kee       = "hunter3-literal"
}
`)
	want := []string{
		"v.hcl:14:13: error: Missing required argument",
		"v.hcl:17:3: error: Unsupported argument",
		"v.hcl:18:3: error: Unsupported argument",
		"v.hcl:19:19: error: Incorrect attribute value type",
		"v.hcl:20:19: error: Invalid duration",
		"v.hcl:21:19: error: Secret given as a literal",
		"v.hcl:22:3: error: Unsupported argument",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), text)
	}
	for _, s := range []string{`Did you mean "workspace_id"?`, `Did you mean "tenant"?`, `Did you mean "api_key"?`, `"workspace_id" is required`} {
		if !strings.Contains(text, s) {
			t.Errorf("diagnostics do not say %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, "hunter") {
		t.Errorf("a secret is printed:\n%s", text)
	}
}

// A plugin that cannot be found says where it was looked for; one that
// fails while describing itself gets a located error of its own; the rest
// of the configuration is still checked.
func TestUnknownAndBrokenPlugins(t *testing.T) {
	f := newFakePlugins()
	f.broken["vendor/crashy"] = errors.New(`plugin "crashy" (/opt/rpacloud/plugins/rpacloud-vendor-crashy): info: rpc error: code = Unavailable`)
	_, got, text := loadPlugins(t, f, rcPool+`
vendor "rc" {
  type = "blueprism"
  url  = "https://bp.example"
}
vendor "c" {
  type = "crashy"
  url  = "https://c.example"
}
process "y" {
  pool    = "p"
  crawler = "selenium"
  package = "s"
  retries = -1
}
`)
	want := []string{
		"v.hcl:15:10: error: Unknown vendor plugin",
		"v.hcl:19:10: error: Cannot read the plugin's schema",
		"v.hcl:24:13: error: Unknown crawler plugin",
		"v.hcl:26:13: error: Invalid retries",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), text)
	}
	for _, s := range []string{`"rpacloud-vendor-blueprism" in plugin directory /opt/rpacloud/plugins`, "rpc error", `vendor "c" type = "crashy"`} {
		if !strings.Contains(text, s) {
			t.Errorf("diagnostics do not say %q:\n%s", s, text)
		}
	}
}

// Without a plugin lookup (config.Load) the body is passed on as before,
// beside the daemon's own poll_interval, which is checked either way.
func TestPluginBodyWithoutLookup(t *testing.T) {
	cfg, got, _ := loadPlugins(t, nil, rcPool+`
vendor "rc" {
  type          = "robocorp"
  url           = "https://cloud.robocorp.com/api/v1"
  workspace_id  = "ws-1"
  poll_interval = "2m"
}
vendor "fast" {
  type          = "robocorp"
  url           = "https://cloud.robocorp.com/api/v1"
  poll_interval = "10ms"
}
`)
	if want := []string{"v.hcl:23:19: error: Invalid poll_interval"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q, want %q", got, want)
	}
	if e := cfg.Vendors[0].Extra; e["workspace_id"] != "ws-1" || e["poll_interval"] != "2m0s" {
		t.Errorf("extra = %v", e)
	}
}
