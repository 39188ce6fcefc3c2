package config_test

import (
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

// A pool may omit its provider: its robots are all enrolled machines. A
// provider it does name must exist.
func TestPoolWithoutProvider(t *testing.T) {
	src := "pool \"onprem\" {\n  min = 2\n  max = 4\n}\nprocess \"x\" {\n  pool    = \"onprem\"\n  builtin = \"noop\"\n}\n"
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(src)})
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", problems(diags))
	}
	if p := cfg.Pools[0]; p.Provider != "" || p.Min != 2 || p.Max != 4 {
		t.Fatalf("pool %+v", p)
	}
	bad := strings.Replace(src, "min = 2", "provider = \"nowhere\"\n  min = 2", 1)
	_, diags, _ = config.LoadSources(map[string][]byte{"a.hcl": []byte(bad)})
	if !diags.HasErrors() || !strings.Contains(strings.Join(problems(diags), "\n"), "a.hcl:2:") {
		t.Fatalf("unknown provider: %v", problems(diags))
	}
}
