package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
)

const scalingBase = "provider \"p\" {\n  plugin = \"local\"\n}\nprocess \"x\" {\n  pool    = \"a\"\n  builtin = \"noop\"\n}\n"

func TestScalingSettings(t *testing.T) {
	src := scalingBase + `pool "a" {
  provider       = "p"
  max            = 10
  cooldown       = "90s"
  boot_aware     = true
  licence_cap    = 12
  prewarm_robots = 4
  prewarm_lead   = "15m"
  boot_timeout   = "5m"
}
`
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(src)})
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", problems(diags))
	}
	s := cfg.Pools[0].Scaling
	if s.Cooldown == nil || *s.Cooldown != 90*time.Second || !s.BootAware || s.LicenceCap != 12 ||
		s.PrewarmRobots != 4 || s.PrewarmLead != 15*time.Minute || s.BootTimeout != 5*time.Minute {
		t.Fatalf("decoded %+v", s)
	}

	cfg, diags, _ = config.LoadSources(map[string][]byte{"a.hcl": []byte(scalingBase + "pool \"a\" {\n  provider = \"p\"\n  max = 3\n}\n")})
	if len(diags) > 0 || cfg.Pools[0].Scaling != (config.Scaling{}) {
		t.Fatalf("defaults: %+v %v", cfg.Pools[0].Scaling, problems(diags))
	}
}

func TestScalingSettingsErrors(t *testing.T) {
	cases := map[string]string{
		`licence_cap = -1`:     `a.hcl:11:17: error: Invalid licence_cap`,
		`prewarm_robots = 11`:  `a.hcl:11:20: error: Invalid prewarm_robots`,
		`prewarm_lead = "10m"`: `a.hcl:11:18: error: Missing prewarm_robots`,
		`boot_timeout = "0s"`:  `a.hcl:11:18: error: Invalid boot_timeout`,
		`cooldown = "5"`:       `a.hcl:11:14: error: Invalid duration`,
		`boot_aware = "maybe"`: `a.hcl:11:16: error: Incorrect attribute value type`,
	}
	for attr, want := range cases {
		src := scalingBase + "pool \"a\" {\n  provider = \"p\"\n  max = 10\n  " + attr + "\n}\n"
		_, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(src)})
		got := strings.Join(problems(diags), "\n")
		if !strings.Contains(got, want) {
			t.Errorf("%s: got\n%s\nwant %s", attr, got, want)
		}
	}
}
