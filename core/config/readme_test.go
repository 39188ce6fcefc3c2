package config_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
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
