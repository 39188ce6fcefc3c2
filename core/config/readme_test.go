package config_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch/policy"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
)

// The examples in README.md form one valid configuration, so the reference
// cannot show syntax the loader refuses.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	if len(blocks) < 8 {
		t.Fatalf("found %d hcl examples in README.md", len(blocks))
	}
	srcs := map[string][]byte{
		// The process example runs in a pool the pool example does not declare.
		"zz-extra.hcl": []byte("pool \"default\" {\n  provider = \"local\"\n  max      = 1\n}\n"),
	}
	for i, m := range blocks {
		srcs[fmt.Sprintf("readme-%02d.hcl", i)] = []byte(m[1])
	}
	_, diags, _ := config.LoadSources(srcs)
	if len(diags) > 0 {
		t.Errorf("README examples:\n%s", strings.Join(problems(diags), "\n"))
	}
}

// The reference names every value of the enumerated attributes whose list
// lives in a core room, so a value added there is documented.
func TestReadmeNamesEveryEnumValue(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for attr, vals := range map[string][]string{
		"fairness":     policy.Names(),
		"kind":         config.CustomerKinds,
		"min_severity": rules.SeverityNames(),
	} {
		row := regexp.MustCompile("(?m)^\\| `" + attr + "` \\|.*$").FindString(string(b))
		if row == "" {
			t.Errorf("README.md has no row for %s", attr)
			continue
		}
		for _, v := range vals {
			if !strings.Contains(row, "`"+v+"`") && !strings.Contains(row, `"`+v+`"`) {
				t.Errorf("README.md row for %s does not name %q: %s", attr, v, row)
			}
		}
	}
}
