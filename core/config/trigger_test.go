package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

const triggerBase = `
pool "p" {
  provider = "local"
  max      = 2
}
provider "local" { plugin = "local" }
customer "acme" {}
customer "tax" { kind = "department" }
process "vat" {
  pool    = "p"
  builtin = "echo"
  owner   = "tax"
  schedule "night" {
    cron     = "0 1 * * *"
    duration = "3h"
    timezone = "Asia/Shanghai"
  }
}
process "shared" {
  pool    = "p"
  builtin = "noop"
}
`

// loadDir writes files (name → content) to a directory and loads its
// main.hcl from disk, as the daemon does.
func loadDir(t *testing.T, files map[string]string) (*Config, hcl.Diagnostics) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, diags, _ := Load(filepath.Join(dir, "main.hcl"))
	return cfg, diags
}

const cn2026 = `# China 2026 (excerpt)
2026-10-01
2026-10-02 off
2026-10-10 work  # 调休
`

func TestTriggerDecodes(t *testing.T) {
	cfg, diags := loadDir(t, map[string]string{
		"main.hcl": triggerBase + `
server { timezone = "Asia/Shanghai" }
calendar "cn" {
  file    = "calendars/cn.txt"
  weekend = ["sat", "sun"]
}
trigger "nightly" {
  process  = "vat"
  cron     = "30 2 * * *"
  calendar = "cn"
  days     = "working"
  catch_up = "once"
  slot     = "night"
  label    = "nightly VAT"
  input_template = "{\"period\":\"{{.Month}}\",\"day\":\"{{.Date}}\"}"
}
trigger "list" {
  process  = "shared"
  customer = "acme"
  cron     = "0 9 * * mon"
  timezone = "Europe/Berlin"
  inputs   = [{ company = "a" }, { company = "b", n = 2 }]
}
trigger "file" {
  process     = "shared"
  customer    = "acme"
  cron        = "0 9 1 * *"
  inputs_file = "inputs.jsonl"
}
`,
		"calendars/cn.txt": cn2026,
		"inputs.jsonl":     "{\"a\":1}\n\n{\"a\":2}\n",
	})
	if diags.HasErrors() || len(diags) > 1 || len(diags) == 1 && diags[0].Summary != CalendarRunningOut {
		t.Fatal(diags) // the excerpt's 2026 dates run out as the test's clock goes on
	}
	if len(cfg.Triggers) != 3 || len(cfg.Calendars) != 1 {
		t.Fatalf("triggers %d calendars %d", len(cfg.Triggers), len(cfg.Calendars))
	}
	n := cfg.Triggers[0]
	if n.Customer != "tax" || n.Timezone != "Asia/Shanghai" || n.Rule() != "once" || n.Days != "working" {
		t.Errorf("nightly: %+v", n)
	}
	// Over the National Day week: working days only, 10-10 (a Saturday) included.
	sh := n.Location()
	runs, _ := n.Schedule().Runs(time.Date(2026, 9, 30, 12, 0, 0, 0, sh), time.Date(2026, 10, 12, 0, 0, 0, 0, sh), 50)
	var days []string
	for _, r := range runs {
		days = append(days, r.In(sh).Format("01-02 15:04"))
	}
	if got, want := strings.Join(days, ","), "10-05 02:30,10-06 02:30,10-07 02:30,10-08 02:30,10-09 02:30,10-10 02:30"; got != want {
		t.Errorf("runs %s, want %s", got, want)
	}
	in, err := n.InputsAt(time.Date(2026, 10, 9, 18, 30, 0, 0, time.UTC))
	if err != nil || len(in) != 1 || string(in[0]) != `{"period":"2026-10","day":"2026-10-10"}` {
		t.Errorf("template inputs %s %v", in, err)
	}
	l := cfg.Triggers[1]
	if l.Timezone != "Europe/Berlin" || l.Rule() != "skip" {
		t.Errorf("list: %+v", l)
	}
	if in, _ := l.InputsAt(time.Now()); len(in) != 2 || string(in[1]) != `{"company":"b","n":2}` {
		t.Errorf("inline inputs %s", in)
	}
	if in, _ := cfg.Triggers[2].InputsAt(time.Now()); len(in) != 2 || string(in[1]) != `{"a":2}` {
		t.Errorf("file inputs %s", in)
	}
	if cfg.Triggers[2].Timezone != "Asia/Shanghai" {
		t.Errorf("the server's zone is the default: %s", cfg.Triggers[2].Timezone)
	}
}

// The real cron through a calendar across a daylight-saving change.
func TestTriggerCronZoneDST(t *testing.T) {
	cfg, diags := loadDir(t, map[string]string{"main.hcl": triggerBase + `
trigger "berlin" {
  process  = "shared"
  customer = "acme"
  cron     = "30 2 * * *"
  timezone = "Europe/Berlin"
}`})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	// 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 → 03:00):
	// the cron has no match that day and the trigger does not fire; 01:30
	// UTC before the change, 00:30 UTC after.
	runs, _ := cfg.Triggers[0].Schedule().Runs(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), 10)
	var got []string
	for _, r := range runs {
		got = append(got, r.Format("01-02 15:04"))
	}
	if want := "03-28 01:30,03-30 00:30"; strings.Join(got, ",") != want {
		t.Errorf("runs %v, want %s", got, want)
	}
}

func TestTriggerRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, hcl string
		files     map[string]string
		want      string // summary and a part of the detail
		line      int    // of the diagnostic in main.hcl (the trigger starts at line 1 of the addition)
	}{
		{name: "bad cron", hcl: `trigger "t" {
  process = "vat"
  cron    = "61 * * * *"
}`, want: "Invalid cron expression", line: 3},
		{name: "bad zone", hcl: `trigger "t" {
  process  = "vat"
  cron     = "0 1 * * *"
  timezone = "Mars/Olympus"
}`, want: "Invalid timezone", line: 4},
		{name: "days without calendar", hcl: `trigger "t" {
  process = "vat"
  cron    = "0 1 * * *"
  days    = "working"
}`, want: "days without calendar", line: 4},
		{name: "bad days", hcl: `trigger "t" {
  process = "vat"
  cron    = "0 1 * * *"
  days    = "holidays"
}`, want: "Invalid value for days", line: 4},
		{name: "bad catch up", hcl: `trigger "t" {
  process  = "vat"
  cron     = "0 1 * * *"
  catch_up = "twice"
}`, want: "Invalid value for catch_up", line: 4},
		{name: "undefined process", hcl: `trigger "t" {
  process = "vta"
  cron    = "0 1 * * *"
}`, want: "Undefined process", line: 2},
		{name: "undefined calendar", hcl: `trigger "t" {
  process  = "vat"
  cron     = "0 1 * * *"
  calendar = "cn"
}`, want: "Undefined calendar", line: 4},
		{name: "another customer", hcl: `trigger "t" {
  process  = "vat"
  customer = "acme"
  cron     = "0 1 * * *"
}`, want: "Trigger for another customer", line: 1},
		{name: "shared without customer", hcl: `trigger "t" {
  process = "shared"
  cron    = "0 1 * * *"
}`, want: "Trigger without customer", line: 1},
		{name: "two input sources", hcl: `trigger "t" {
  process        = "vat"
  cron           = "0 1 * * *"
  inputs         = [{}]
  input_template = "{}"
}`, want: "Conflicting trigger inputs", line: 5},
		{name: "inputs not objects", hcl: `trigger "t" {
  process = "vat"
  cron    = "0 1 * * *"
  inputs  = ["a"]
}`, want: "Invalid inputs", line: 4},
		{name: "inputs with credentials", hcl: `trigger "t" {
  process = "vat"
  cron    = "0 1 * * *"
  inputs  = [{ credentials = "x" }]
}`, want: "credentials", line: 4},
		{name: "template unknown field", hcl: `trigger "t" {
  process        = "vat"
  cron           = "0 1 * * *"
  input_template = "{\"d\":\"{{.Day}}\"}"
}`, want: "Invalid input_template", line: 4},
		{name: "template not an object", hcl: `trigger "t" {
  process        = "vat"
  cron           = "0 1 * * *"
  input_template = "{{.Date}}"
}`, want: "must render to a JSON object", line: 4},
		{name: "missing inputs file", hcl: `trigger "t" {
  process     = "vat"
  cron        = "0 1 * * *"
  inputs_file = "nope.json"
}`, want: "Cannot read inputs_file", line: 4},
		{name: "bad inputs file", hcl: `trigger "t" {
  process     = "vat"
  cron        = "0 1 * * *"
  inputs_file = "in.jsonl"
}`, files: map[string]string{"in.jsonl": "{\"a\":1}\nnot json\n"}, want: "line 2 is not JSON", line: 4},
		{name: "undefined slot", hcl: `trigger "t" {
  process = "vat"
  cron    = "0 1 * * *"
  slot    = "day"
}`, want: "Undefined slot", line: 4},
		{name: "bad calendar line", hcl: `calendar "cn" {
  file = "cn.txt"
}`, files: map[string]string{"cn.txt": "2026-10-01\n2026-02-30 off\n"}, want: "cn.txt:2: \"2026-02-30\" is not a date", line: 2},
		{name: "bad weekend", hcl: `calendar "cn" {
  file    = "cn.txt"
  weekend = ["saturday"]
}`, files: map[string]string{"cn.txt": ""}, want: "Invalid weekend day", line: 3},
		{name: "calendar file too big", hcl: `calendar "cn" {
  file = "cn.txt"
}`, files: map[string]string{"cn.txt": strings.Repeat("#\n", 200<<10)}, want: "over the limit", line: 2},
		{name: "never fires", hcl: `calendar "none" {
  file    = "none.txt"
  weekend = []
}
trigger "t" {
  process  = "vat"
  cron     = "0 1 * * *"
  calendar = "none"
  days     = "non_working"
}`, files: map[string]string{"none.txt": "# no holidays\n"}, want: "no run within a year", line: 5},
		{name: "server zone", hcl: `server { timezone = "Local" }`, want: "Invalid timezone", line: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"main.hcl": triggerBase + tc.hcl}
			for k, v := range tc.files {
				files[k] = v
			}
			_, diags := loadDir(t, files)
			baseLines := strings.Count(triggerBase, "\n")
			for _, d := range diags {
				if d.Severity == hcl.DiagError && strings.Contains(d.Summary+": "+d.Detail, tc.want) {
					if d.Subject == nil || d.Subject.Start.Line != baseLines+tc.line {
						t.Errorf("%q at %v, want line %d", tc.want, d.Subject, baseLines+tc.line)
					}
					return
				}
			}
			t.Errorf("no error %q in %v", tc.want, diags)
		})
	}
}

func TestTriggerSlotWarnings(t *testing.T) {
	_, diags := loadDir(t, map[string]string{"main.hcl": triggerBase + `
trigger "late" {
  process  = "vat"
  cron     = "0 5 * * *"
  timezone = "Asia/Shanghai"
  slot     = "night"
}
trigger "inside" {
  process  = "vat"
  cron     = "0 2 * * *"
  timezone = "Asia/Shanghai"
  slot     = "night"
}
trigger "noslot" {
  process = "vat"
  cron    = "0 2 * * *"
}`})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+" @"+d.Subject.String())
	}
	if len(diags) != 2 || diags[0].Summary != "Trigger outside its slot" || !strings.Contains(diags[0].Detail, `trigger "late" fires at`) ||
		diags[1].Summary != "Trigger outside the run schedule" || !strings.Contains(diags[1].Detail, `trigger "noslot"`) {
		t.Errorf("warnings %v", got)
	}
}

// A configuration sent through the API cannot make the daemon read files
// of its host.
func TestTriggerFilesRefusedFromAPI(t *testing.T) {
	_, diags, _ := LoadSources(map[string][]byte{"main.hcl": []byte(triggerBase + `
calendar "cn" { file = "/etc/passwd" }
trigger "t" {
  process     = "vat"
  cron        = "0 1 * * *"
  inputs_file = "in.json"
}`)})
	n := 0
	for _, d := range diags {
		if d.Summary == "File not available" {
			n++
			if strings.Contains(d.Detail, "root:") {
				t.Errorf("the file was read: %s", d.Detail)
			}
		}
	}
	if n != 2 {
		t.Errorf("want 2 refusals, got %v", diags)
	}
}

func TestTriggerPlan(t *testing.T) {
	files := map[string]string{"main.hcl": triggerBase + `
calendar "cn" { file = "cn.txt" }
trigger "t" {
  process  = "vat"
  cron     = "30 1 * * *"
  calendar = "cn"
  slot     = "night"
}`, "cn.txt": "2026-10-01\n"}
	old, diags := loadDir(t, files)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	files["cn.txt"] = "2026-10-01\n2026-10-02\n"
	files["main.hcl"] = strings.Replace(files["main.hcl"], `"30 1 * * *"`, `"0 2 * * *"`, 1)
	next, diags := loadDir(t, files)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := Diff(old, next)
	var got []string
	for _, c := range p.Changes {
		if c.Restart != "" || c.HostFiles != "" {
			t.Errorf("%s %s is not live: %+v", c.Kind, c.Name, c)
		}
		for _, a := range c.Attributes {
			got = append(got, c.Kind+"."+a.Name)
		}
	}
	if strings.Join(got, ",") != "calendar.file_sha256,trigger.cron" {
		t.Errorf("plan %v", got)
	}
}

// A revision another daemon applied from its own files names the same
// side files; a follower reads them from its own configuration directory.
func TestTriggerFilesFollowedFromOwnDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cn.txt"), []byte("2026-10-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srcs := map[string][]byte{"main.hcl": []byte(triggerBase + `
calendar "cn" { file = "cn.txt" }
`)}
	cfg, diags, _ := LoadSourcesAt(context.Background(), nil, srcs, dir)
	if diags.HasErrors() || len(cfg.Calendars) != 1 || cfg.Calendars[0].Rules().Working(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("%v %+v", diags, cfg.Calendars)
	}
}

// A calendar named without days filters nothing; a calendar file whose
// dates end soon leaves next year's holidays unknown. Both are warnings.
func TestCalendarWarnings(t *testing.T) {
	soon := time.Now().AddDate(0, 0, 20).Format(time.DateOnly)
	later := time.Now().AddDate(0, 6, 0).Format(time.DateOnly)
	_, diags := loadDir(t, map[string]string{"main.hcl": triggerBase + `
calendar "ending" { file = "ending.txt" }
calendar "fine" { file = "fine.txt" }
calendar "weekends" { file = "empty.txt" }
trigger "nodays" {
  process  = "vat"
  cron     = "0 2 * * *"
  calendar = "fine"
  slot     = "night"
  timezone = "Asia/Shanghai"
}
trigger "ok" {
  process  = "vat"
  cron     = "0 2 * * *"
  calendar = "weekends"
  days     = "working"
  slot     = "night"
  timezone = "Asia/Shanghai"
}`, "ending.txt": "2020-01-01\n" + soon + "\n", "fine.txt": soon + "\n" + later + " work\n", "empty.txt": "# weekends only\n"})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+": "+d.Detail)
	}
	if len(diags) != 2 || diags[0].Summary != "Calendar running out" || !strings.Contains(diags[0].Detail, "lists no date after "+soon) ||
		diags[1].Summary != "calendar without days" || !strings.Contains(diags[1].Detail, `trigger "nodays"`) {
		t.Errorf("warnings %q", got)
	}
}
