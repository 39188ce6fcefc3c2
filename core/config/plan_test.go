package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

const planBase = `
server {
  listen   = "127.0.0.1:8080"
  data_dir = "/var/lib/rpacloud"
  database {
    driver = "postgres"
    dsn    = "postgres://db/rpacloud"
  }
}
provider "local" {
  plugin = "local"
}
network "office" {
  proxy = "http://proxy:3128"
  allow = ["*.office.example"]
}
pool "a" {
  provider = "local"
  max      = 2
}
pool "c" {
  provider = "local"
  max      = 1
}
customer "acme" {}
process "x" {
  pool         = "a"
  builtin      = "echo"
  max_duration = "10m"
  schedule "nightly" {
    cron = "0 2 * * *"
  }
}
process "y" {
  pool    = "c"
  builtin = "noop"
}
`

func mustLoad(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"main.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return cfg
}

// edit applies literal replacements to the base configuration.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := planBase
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in the base", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestDiff(t *testing.T) {
	base := mustLoad(t, planBase)
	removeC := []string{`pool "c" {
  provider = "local"
  max      = 1
}`, ``, `process "y" {
  pool    = "c"
  builtin = "noop"
}`, ``}
	cases := []struct {
		name string
		new  string
		want string // the plan's text
	}{
		{"same", planBase, "No changes: the configuration matches the running one.\n"},
		{"add a pool", planBase + `pool "b" {
  provider = "local"
  max      = 1
}
process "w" {
  pool    = "b"
  builtin = "noop"
}`, "+ pool \"b\"\n+ process \"w\"\nPlan: 2 to add, 0 to change, 0 to remove.\n"},
		{"change a process", edit(t, `max_duration = "10m"`, `max_duration = "20m"
  retries = 5`), "~ process \"x\"\n    max_duration: 10m0s → 20m0s\n    retries: 3 → 5\n    schedules.nightly.duration: 10m0s → 20m0s\nPlan: 0 to add, 1 to change, 0 to remove.\n"},
		{"change a schedule", edit(t, `"0 2 * * *"`, `"0 3 * * *"`),
			"~ process \"x\"\n    schedules.nightly.cron: 0 2 * * * → 0 3 * * *\nPlan: 0 to add, 1 to change, 0 to remove.\n"},
		{"remove a pool and its process", edit(t, removeC...),
			"- pool \"c\"\n- process \"y\"\nPlan: 0 to add, 0 to change, 2 to remove.\n"},
		{"network list", edit(t, `allow = ["*.office.example"]`, `allow = ["*.office.example", "10.0.0.0/8"]`),
			"~ network \"office\"\n    allow: [\"*.office.example\"] → [\"*.office.example\",\"10.0.0.0/8\"]\nPlan: 0 to add, 1 to change, 0 to remove.\n"},
		{"customer attribute", edit(t, `customer "acme" {}`, `customer "acme" {
  display_name = "ACME"
}`), "~ customer \"acme\"\n    display_name: acme → ACME\nPlan: 0 to add, 1 to change, 0 to remove.\n"},
		{"server needs a restart", edit(t, `//db/`, `//db2/`),
			"~ server (needs a restart: the daemon's listener, storage, directories, log level and request limits are set up once at start)\n" +
				"    database.dsn: postgres://db/rpacloud → postgres://db2/rpacloud\n" +
				"Plan: 0 to add, 1 to change, 0 to remove.\n" +
				"1 change(s) need a restart: apply refuses this plan; restart the daemon with these files instead.\n"},
		{"changed provider needs a restart", edit(t, `plugin = "local"`, `plugin = "local"
  state_dir = "/tmp/x"`),
			"~ provider \"local\" (needs a restart: a provider's plugin keeps the robots it rented; a changed provider block takes effect at the next restart)\n" +
				"    config.state_dir: (none) → /tmp/x\n" +
				"Plan: 0 to add, 1 to change, 0 to remove.\n" +
				"1 change(s) need a restart: apply refuses this plan; restart the daemon with these files instead.\n"},
		{"vault added needs a restart", planBase + `vault {
  address    = "http://127.0.0.1:8200"
  token_file = "/etc/rpacloud/vault.token"
}`, "+ vault (needs a restart: the daemon logs in to Vault once and keeps its token alive; a new address or login needs a restart)\n" +
			"Plan: 1 to add, 0 to change, 0 to remove.\n" +
			"1 change(s) need a restart: apply refuses this plan; restart the daemon with these files instead.\n"},
		{"monitor thresholds are live", planBase + `monitor {
  stuck_after = "30m"
}`, "+ monitor\nPlan: 1 to add, 0 to change, 0 to remove.\n"},
		{"a monitor webhook needs a restart", planBase + `monitor {
  stuck_after = "30m"
  webhook {
    url = "https://hooks.example/rpacloud"
  }
}`, "+ monitor (needs a restart: the monitor's webhook is started once; its thresholds and intervals change live)\n" +
			"Plan: 1 to add, 0 to change, 0 to remove.\n" +
			"1 change(s) need a restart: apply refuses this plan; restart the daemon with these files instead.\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := config.Diff(base, mustLoad(t, c.new))
			if got := p.String(); got != c.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// TestDiffOrder: kinds in table order, then add, change, remove, then by
// name, whatever the declaration order; the JSON form carries the same.
func TestDiffOrder(t *testing.T) {
	base := mustLoad(t, planBase)
	next := mustLoad(t, edit(t, `max_duration = "10m"`, `max_duration = "11m"`)+`
pool "z" {
  provider = "local"
  max      = 1
}
pool "b" {
  provider = "local"
  max      = 1
}
process "w" {
  pool    = "b"
  builtin = "noop"
}
process "v" {
  pool    = "z"
  builtin = "noop"
}
customer "beta" {}
`)
	p := config.Diff(base, next)
	var got []string
	for _, c := range p.Changes {
		got = append(got, string(c.Action)+" "+c.Kind+" "+c.Name)
	}
	want := []string{"add customer beta", "add pool b", "add pool z", "add process v", "add process w", "change process x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("order %q, want %q", got, want)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back config.Plan
	if err := json.Unmarshal(b, &back); err != nil || back.String() != p.String() {
		t.Fatalf("JSON round trip: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), `"attributes":[{"name":"max_duration","old":"10m0s","new":"11m0s"},`) {
		t.Errorf("JSON: %s", b)
	}
	if len(p.NeedsRestart()) != 0 {
		t.Error("a live plan needs a restart")
	}
}

// TestDiffMasksSecrets: a DSN's password (set from the environment on
// the running config) and a literal under a secret's name never reach a
// plan.
func TestDiffMasksSecrets(t *testing.T) {
	old, new := mustLoad(t, planBase), mustLoad(t, planBase)
	new.Server.Database.DSN = "postgres://rpa:hunter2@db/rpacloud"
	new.Providers[0].Config["api_token"] = "hunter2"
	p := config.Diff(old, new)
	if s := p.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "postgres://rpa:xxxxx@db/rpacloud") || !strings.Contains(s, "(sensitive)") {
		t.Fatalf("plan:\n%s", s)
	}
}

// TestHolder: a *Config is its own Live; a Holder swaps whole.
func TestHolder(t *testing.T) {
	a, b := &config.Config{}, &config.Config{}
	var l config.Live = a
	if l.Current() != a {
		t.Fatal("a config is not its own Live")
	}
	h := config.NewHolder(a)
	h.Store(b)
	if h.Current() != b {
		t.Fatal("Store did not swap")
	}
}
