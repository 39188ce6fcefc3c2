package config_test

import (
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

const deliveryBase = `
provider "local" { plugin = "local" }
process "p" {
  pool    = "pool1"
  builtin = "noop"
  schedule "s" {
    cron  = "0 9 * * 1-5"
    robot = "pool1-1"
  }
  schedule "t" {
    cron   = "0 9 * * 6"
    robots = 3
  }
}
`

func TestDeliveryAttributes(t *testing.T) {
	src := deliveryBase + `
pool "pool1" {
  provider      = "local"
  max           = 4
  software      = ["UiPath Robot", "WPS Office"]
  config_files  = ["C:\\rpa\\a.json"]
  remote_access = "rdp"
}
pool "bare" {
  provider = "local"
  max      = 1
}
process "q" {
  pool    = "bare"
  builtin = "noop"
}
documents {
  language     = "zh"
  organisation = "ACME"
  timezone     = "Asia/Shanghai"
}
`
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s := cfg.Pools[0].Setup
	if s == nil || strings.Join(s.Software, "|") != "UiPath Robot|WPS Office" || s.ConfigFiles[0] != `C:\rpa\a.json` || s.RemoteAccess != "rdp" {
		t.Fatalf("setup %+v", s)
	}
	if cfg.Pools[1].Setup != nil {
		t.Fatal("a pool without setup attributes has a setup")
	}
	sc := cfg.Processes[0].Schedules
	if sc[0].Robot != "pool1-1" || sc[0].Robots != 0 || sc[1].Robots != 3 {
		t.Fatalf("schedules %+v", sc)
	}
	if d := cfg.Documents; d.Language != "zh" || d.Organisation != "ACME" || d.Timezone != "Asia/Shanghai" || d.Support != "" {
		t.Fatalf("documents %+v", d)
	}
	cfg, diags, _ = config.LoadSources(map[string][]byte{"a.hcl": []byte(strings.ReplaceAll(src, "documents {", "x {"))})
	_ = cfg
	if !diags.HasErrors() {
		t.Fatal("unknown block accepted")
	}
	cfg, _, _ = config.LoadSources(map[string][]byte{"a.hcl": []byte(deliveryBase + "pool \"pool1\" {\n provider = \"local\"\n max = 1\n}\n")})
	if cfg.Documents.Language != "en" || cfg.Documents.Organisation != "rpacloud" {
		t.Fatalf("defaults %+v", cfg.Documents)
	}
}

func TestDeliveryErrors(t *testing.T) {
	src := `
provider "local" { plugin = "local" }
pool "pool1" {
  provider      = "local"
  max           = 4
  software      = ["WPS", "WPS", ""]
  remote_access = "teamviewer"
}
process "p" {
  pool    = "pool1"
  builtin = "noop"
  schedule "s" {
    cron   = "0 9 * * *"
    robot  = "bad name"
  }
  schedule "t" {
    cron   = "0 9 * * *"
    robot  = "pool1-1"
    robots = 2
  }
  schedule "u" {
    cron   = "0 9 * * *"
    robots = 0
  }
}
documents {
  language = "fr"
  timezone = "Mars/Olympus"
}
documents {}
`
	_, diags, _ := config.LoadSources(map[string][]byte{"bad.hcl": []byte(src)})
	got := strings.Join(problems(diags), "\n")
	for _, want := range []string{
		"bad.hcl:6:27: error: Duplicate software entry",
		"bad.hcl:6:34: error: Invalid software entry",
		"bad.hcl:7:19: error: Invalid value for remote_access",
		"bad.hcl:14:14: error: Invalid robot name",
		"bad.hcl:19:14: error: Invalid robots",
		"bad.hcl:23:14: error: Invalid robots",
		"bad.hcl:27:14: error: Invalid value for language",
		"bad.hcl:28:14: error: Invalid timezone",
		"bad.hcl:30:1: error: Duplicate documents block",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}
