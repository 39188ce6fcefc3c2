package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/config"
)

const minimal = `
provider "local" {
  plugin = "local"
}

pool "p" {
  provider = "local"
  max      = 3
}

vendor "aa" {
  type = "aa"
  url  = "https://controlroom.example"
}

customer "acme" {}

process "x" {
  pool    = "p"
  crawler = "http"
  package = "flows/x.yaml"

  schedule "daily" {
    cron = "0 6 * * *"
  }
}

vault {
  address = "https://vault.example:8200"
}
`

func TestDefaults(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"min.hcl": []byte(minimal)})
	if len(diags) > 0 {
		t.Fatal(strings.Join(problems(diags), "\n"))
	}
	wantServer := config.Server{Listen: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", DataDir: ".rpacloud",
		LogLevel: "info", Database: config.Database{Driver: "sqlite"}, Limits: defaultLimits}
	if !reflect.DeepEqual(cfg.Server, wantServer) {
		t.Errorf("server: %+v", cfg.Server)
	}
	p := cfg.Pools[0]
	if p.Min != 0 || p.Period != 60*time.Second || p.TasksPerRobot != 1 || p.Fairness != "fair_share" || p.Network != "" {
		t.Errorf("pool: %+v", p)
	}
	pr := cfg.Processes[0]
	if pr.MaxDuration != 10*time.Minute || pr.Retries != 3 || pr.MaxWait != 24*time.Hour || pr.Kind != "crawler" || pr.Runner != "http" || pr.Owner != "" {
		t.Errorf("process: %+v", pr)
	}
	// A schedule's slot lasts as long as one attempt may unless told.
	if s := pr.Schedules[0]; s.Duration != 10*time.Minute || s.Timezone != "" {
		t.Errorf("schedule: %+v", s)
	}
	if c := cfg.Customers[0]; c.Kind != "company" || c.DisplayName != "acme" || c.Parent != "" {
		t.Errorf("customer: %+v", c)
	}
	want := config.Vault{Address: "https://vault.example:8200", AuthMethod: "token", Mount: "secret", Prefix: "rpacloud"}
	if cfg.Vault == nil || *cfg.Vault != want {
		t.Errorf("vault: %+v", cfg.Vault)
	}
	if v := cfg.Vendors[0]; v.Credentials != "" || len(v.Extra) != 0 {
		t.Errorf("vendor: %+v", v)
	}
}

// public_url follows listen unless it is set.
func TestPublicURLDefault(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte("server {\n  listen = \":9000\"\n}\n")})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if cfg.Server.PublicURL != "http://:9000" || cfg.Server.Listen != ":9000" {
		t.Errorf("server: %+v", cfg.Server)
	}
	// Robots on other machines cannot dial an unspecified address.
	for listen, warn := range map[string]bool{":9000": true, "0.0.0.0:80": true, "[::]:80": true, "10.0.0.5:80": false, "localhost:80": false} {
		src := fmt.Sprintf("server {\n  listen = %q\n}\n", listen)
		_, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte(src)})
		got := len(diags) == 1 && diags[0].Summary == "No public_url" && diags[0].Severity == hcl.DiagWarning
		if got != warn || (!warn && len(diags) > 0) {
			t.Errorf("listen %q: %v", listen, problems(diags))
		}
	}
	src := "server {\n  listen = \"0.0.0.0:80\"\n  public_url = \"https://rpa.example\"\n}\n"
	if _, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte(src)}); len(diags) > 0 {
		t.Errorf("public_url set: %v", problems(diags))
	}
}

func TestEmptyConfiguration(t *testing.T) {
	cfg, diags, files := config.LoadSources(map[string][]byte{"empty.hcl": nil})
	if len(diags) > 0 || len(files) != 1 || cfg == nil || cfg.Server.Listen != "127.0.0.1:8080" {
		t.Errorf("got %+v, %v, %d files", cfg, diags, len(files))
	}
	cfg, diags, _ = config.Load()
	if cfg == nil || !diags.HasErrors() || diags[0].Summary != "No configuration given" {
		t.Errorf("Load(): %v", diags)
	}
}

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"b.hcl":       "pool \"p\" {\n  provider = \"local\"\n  max      = 1\n}\n",
		"a.hcl":       "provider \"local\" {\n  plugin = \"local\"\n}\nprocess \"x\" {\n  pool    = \"p\"\n  builtin = \"noop\"\n}\n",
		".#a.hcl":     "garbage {",
		"notes.txt":   "garbage {",
		"c.hcl.bak":   "garbage {",
		"sub/d.hcl":   "garbage {",
		"sub/README":  "",
		"z-other.hcl": "customer \"z\" {}\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The directory and one of its files named again: still one file each.
	cfg, diags, files := config.Load(dir, filepath.Join(dir, "a.hcl"))
	if len(diags) > 0 {
		t.Fatal(strings.Join(problems(diags), "\n"))
	}
	var names []string
	for n := range files {
		names = append(names, filepath.Base(n))
	}
	if len(names) != 3 {
		t.Errorf("files: %v", names)
	}
	if len(cfg.Providers) != 1 || len(cfg.Pools) != 1 || len(cfg.Processes) != 1 || len(cfg.Customers) != 1 {
		t.Errorf("config: %+v", cfg)
	}

	// Load and LoadSources agree.
	srcs := map[string][]byte{}
	for n, f := range files {
		srcs[n] = f.Bytes
	}
	fromSrc, _, _ := config.LoadSources(srcs)
	if !reflect.DeepEqual(strip(cfg), strip(fromSrc)) {
		t.Error("Load and LoadSources differ")
	}
}

// Diagnostics come out file by file, top to bottom, whatever order the
// checks found them in.
func TestDiagnosticsAreSorted(t *testing.T) {
	_, diags, _ := config.Load("testdata/bad/process.hcl", "testdata/bad/pool.hcl")
	var prev *hcl.Range
	for _, d := range diags {
		r := d.Subject
		if prev != nil && r.Filename == prev.Filename && r.Start.Byte < prev.Start.Byte {
			t.Errorf("%s:%d after %s:%d", r.Filename, r.Start.Line, prev.Filename, prev.Start.Line)
		}
		if prev != nil && r.Filename != prev.Filename && !strings.HasSuffix(prev.Filename, "process.hcl") {
			t.Errorf("files out of order: %s then %s", prev.Filename, r.Filename)
		}
		prev = r
	}
}

// max_wait bounds a task's wait for a robot; it is a duration of at least
// a second, reported with its source range.
func TestProcessMaxWait(t *testing.T) {
	src := func(v string) map[string][]byte {
		return map[string][]byte{"m.hcl": []byte(strings.Replace(minimal, `  package = "flows/x.yaml"`, `  package = "flows/x.yaml"
  max_wait = `+v, 1))}
	}
	cfg, diags, _ := config.LoadSources(src(`"2h"`))
	if len(diags) > 0 || cfg.Processes[0].MaxWait != 2*time.Hour {
		t.Fatalf("max_wait = \"2h\": %v %v", cfg.Processes[0].MaxWait, problems(diags))
	}
	for _, bad := range []string{`"0s"`, `"-1h"`, `"500ms"`, `"soon"`} {
		_, diags, _ := config.LoadSources(src(bad))
		if !diags.HasErrors() || diags[0].Subject == nil || diags[0].Subject.Start.Line != 22 {
			t.Errorf("max_wait = %s: %v", bad, problems(diags))
		}
	}
}

// metrics_listen is a HOST:PORT of its own.
func TestServerMetricsListen(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte("server {\n  listen         = \"127.0.0.1:8080\"\n  metrics_listen = \":9090\"\n}\n")})
	if diags.HasErrors() || cfg.Server.MetricsListen != ":9090" {
		t.Fatalf("%v %q", diags, cfg.Server.MetricsListen)
	}
	for src, want := range map[string]string{
		"server {\n  metrics_listen = \"nonsense\"\n}\n":                                      `s.hcl:2,20-30: Invalid listen address`,
		"server {\n  listen = \"127.0.0.1:8080\"\n  metrics_listen = \"127.0.0.1:8080\"\n}\n": `s.hcl:3,20-36: Invalid metrics_listen`,
	} {
		_, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte(src)})
		if !diags.HasErrors() || !strings.Contains(diags.Error(), want) {
			t.Errorf("%q: %v, want %s", src, diags, want)
		}
	}
}
