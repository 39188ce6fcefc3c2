package config

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func TestRetentionBlock(t *testing.T) {
	cfg, diags, _ := LoadSources(map[string][]byte{"r.hcl": []byte(`
retention {
  events         = "7d"
  attempts       = "2160h"
  finished_tasks = "180d"
  anomalies      = "forever"
  audit          = "3650d"
  interval       = "1m"
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := Retention{Events: 7 * Day, Attempts: 90 * Day, FinishedTasks: 180 * Day, Anomalies: 0, Audit: 3650 * Day, Interval: time.Minute, Set: true}
	got := cfg.Retention
	got.DeclRange = want.DeclRange
	if got != want {
		t.Fatalf("retention: %+v, want %+v", got, want)
	}
	empty, _, _ := LoadSources(map[string][]byte{"e.hcl": []byte("")})
	if empty.Retention != noRetention() || empty.Retention.Set || empty.Retention.Events != 0 || empty.Retention.FinishedTasks != 0 {
		t.Fatalf("no block: nothing is pruned; got %+v", empty.Retention)
	}
	// An empty block gives the defaults.
	def, diags, _ := LoadSources(map[string][]byte{"d.hcl": []byte("retention {}\n")})
	got = def.Retention
	got.DeclRange = hcl.Range{}
	if diags.HasErrors() || got != defaultRetention() || got.Events != 30*Day || got.Audit != 0 {
		t.Fatalf("retention {}: %+v %v", def.Retention, diags)
	}
	// A block that sets only one attribute keeps the others' defaults.
	one, diags, _ := LoadSources(map[string][]byte{"o.hcl": []byte(`retention { events = "14d" }`)})
	if diags.HasErrors() || one.Retention.Events != 14*Day || one.Retention.FinishedTasks != DefaultRetentionFinishedTasks {
		t.Fatalf("one attribute: %+v %v", one.Retention, diags)
	}
	if p := Diff(empty, one); len(p.Changes) != 1 || p.Changes[0].Kind != "retention" {
		t.Fatalf("plan of a retention change: %+v", p)
	}
	if p := Diff(empty, empty); len(p.Changes) != 0 {
		t.Fatalf("plan of no change: %+v", p)
	}
}

func TestParseRetention(t *testing.T) {
	for s, want := range map[string]time.Duration{"forever": 0, "1d": Day, "90d": 90 * Day, "1h": time.Hour, "2160h": 90 * Day, "36500d": 36500 * Day} {
		if got, err := ParseRetention(s); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "0d", "59m", "-1d", "1.5d", "d", "90 d", "36501d", "never", "1w"} {
		if got, err := ParseRetention(s); err == nil {
			t.Errorf("ParseRetention(%q) = %v, want an error", s, got)
		}
	}
}

func TestRetentionBlockErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{`retention { events = "soon" }`, "r.hcl:1:22: Invalid retention: events = \"soon\""},
		{`retention { attempts = "30m" }`, "r.hcl:1:24: Invalid retention: attempts = \"30m\": it must be at least 1h0m0s"},
		{`retention { finished_tasks = "-3d" }`, "r.hcl:1:30: Invalid retention: finished_tasks"},
		{`retention { interval = "1s" }`, "r.hcl:1:24: Invalid interval"},
		{`retention { screenshots = "1d" }`, "Unsupported argument"},
		{"retention {}\nretention {}", "r.hcl:2:1: Duplicate retention block"},
	}
	for _, c := range cases {
		_, diags, _ := LoadSources(map[string][]byte{"r.hcl": []byte(c.src)})
		var got []string
		for _, d := range diags {
			loc := ""
			if d.Subject != nil {
				loc = d.Subject.Filename + ":" + strconv.Itoa(d.Subject.Start.Line) + ":" + strconv.Itoa(d.Subject.Start.Column) + ": "
			}
			got = append(got, loc+d.Summary+": "+d.Detail)
		}
		if all := strings.Join(got, "\n"); !strings.Contains(all, c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.src, all, c.want)
		}
	}
}
