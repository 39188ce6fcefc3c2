package config

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMonitorBlock(t *testing.T) {
	cfg, diags, _ := LoadSources(map[string][]byte{"m.hcl": []byte(`
monitor {
  heartbeat_timeout    = "25s"
  failure_jump_percent = 40
  queue_samples        = 6
  data_error_percent   = 35
  stuck_after          = "40m"
  paused_after         = "2h"
  webhook {
    url          = "https://hooks.example.com/abc"
    min_severity = "critical"
  }
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	m := cfg.Monitor
	if m.HeartbeatTimeout != 25*time.Second || m.FailureJump != 40 || m.DataErrorPercent != 35 || m.QueueSamples != 6 || m.StuckAfter != 40*time.Minute || m.PausedAfter != 2*time.Hour || m.Webhook == nil || m.Webhook.MinSeverity != "critical" {
		t.Fatalf("monitor: %+v %+v", m, m.Webhook)
	}
	if cfg, _, _ := LoadSources(map[string][]byte{"e.hcl": []byte("")}); cfg.Monitor.Webhook != nil || cfg.Monitor.HeartbeatTimeout != 0 {
		t.Fatalf("no block: %+v", cfg.Monitor)
	}
}

func TestMonitorBlockErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{`monitor { heartbeat_timeout = "soon" }`, "m.hcl:1:31: Invalid duration"},
		{`monitor { failure_jump_percent = 150 }`, "m.hcl:1:34: Invalid failure_jump_percent"},
		{`monitor { queue_samples = 1 }`, "m.hcl:1:27: Invalid queue_samples"},
		{`monitor { data_error_percent = 101 }`, "m.hcl:1:32: Invalid data_error_percent"},
		{`monitor { failure_min_runs = -1 }`, "Invalid failure_min_runs"},
		{"monitor {\n  webhook {\n    url = \"ftp://x\"\n  }\n}", "m.hcl:3:11: Invalid webhook url"},
		{"monitor {\n  webhook {\n    url = \"https://x/secret-token\"\n    min_severity = \"loud\"\n  }\n}", "min_severity"},
		{`monitor { colour = "red" }`, "Unsupported argument"},
		{"monitor {}\nmonitor {}", "Duplicate monitor block"},
		{"monitor {\n  webhook {\n  }\n}", "Missing required argument"},
	}
	for _, c := range cases {
		_, diags, _ := LoadSources(map[string][]byte{"m.hcl": []byte(c.src)})
		var got []string
		for _, d := range diags {
			loc := ""
			if d.Subject != nil {
				loc = d.Subject.Filename + ":" + strconv.Itoa(d.Subject.Start.Line) + ":" + strconv.Itoa(d.Subject.Start.Column) + ": "
			}
			got = append(got, loc+d.Summary+": "+d.Detail)
		}
		all := strings.Join(got, "\n")
		if !strings.Contains(all, c.want) {
			t.Errorf("%s\n got: %s\nwant: %s", c.src, all, c.want)
		}
		if strings.Contains(all, "secret-token") {
			t.Errorf("diagnostic echoes the webhook URL: %s", all)
		}
	}
}
