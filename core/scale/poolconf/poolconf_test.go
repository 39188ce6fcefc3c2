package poolconf

import (
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
)

const src = `
provider "p" {
  plugin = "local"
}
vendor "ui" {
  type = "uipath"
  url  = "https://orchestrator.internal"
}
pool "a" {
  provider        = "p"
  min             = 1
  max             = 9
  period          = "30s"
  tasks_per_robot = 4
  cooldown        = "100s"
  licence_cap     = 12
  prewarm_robots  = 5
  prewarm_lead    = "15m"
}
pool "b" {
  provider = "p"
  max      = 2
}
process "vat" {
  pool         = "a"
  vendor       = "ui"
  package      = "VAT"
  max_duration = "20m"
  retries      = 2
  schedule "peak" {
    cron     = "0 8 1-15 * *"
    duration = "10h"
    timezone = "Asia/Shanghai"
  }
}
process "echo" {
  pool    = "b"
  builtin = "echo"
}
`

func TestFromConfig(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p, err := FromConfig(cfg, "a")
	if err != nil {
		t.Fatal(err)
	}
	// 100 s of cooldown at a 30 s period skips 4 readings.
	if p.Settings.Cooldown == nil || *p.Settings.Cooldown != 4 || p.Settings.Min != 1 || p.Settings.Max != 9 ||
		p.Settings.TasksPerRobot != 4 || p.Settings.LicenceCap != 12 || p.Vendor != "ui" ||
		p.MaxDuration != 20*time.Minute || p.Retries != 2 || p.BootTimeout != config.DefaultBootTimeout || len(p.Slots) != 1 {
		t.Fatalf("pool a: %+v", p)
	}
	// 07:50 in Shanghai on the 3rd is within 15 minutes of the 08:00 slot.
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := time.Date(2026, 11, 3, 7, 50, 0, 0, sh)
	if got := p.Slots[0].Start.Next(at.Add(-p.Slots[0].Duration).In(p.Slots[0].Location)); !got.Equal(time.Date(2026, 11, 3, 8, 0, 0, 0, sh)) {
		t.Fatalf("next slot %v", got)
	}
	b, err := FromConfig(cfg, "b")
	if err != nil || b.Settings.Cooldown != nil || b.Vendor != "" || b.Period != 60*time.Second {
		t.Fatalf("pool b: %+v %v", b, err)
	}
	if _, err := FromConfig(cfg, ""); err == nil || !strings.Contains(err.Error(), "2 pools") {
		t.Fatalf("no name with two pools: %v", err)
	}
	if _, err := FromConfig(cfg, "zz"); err == nil {
		t.Fatal("unknown pool accepted")
	}
	all, err := All(cfg)
	if err != nil || len(all) != 2 {
		t.Fatalf("All: %v %v", all, err)
	}
}
