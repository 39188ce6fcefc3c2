package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/config"
)

// TestConfigLocatedDiagnostics: a diagnostic the daemon answers (a plugin's
// schema, which the CLI does not check) is shown with the line of the
// local file of that name.
func TestConfigLocatedDiagnostics(t *testing.T) {
	src := []byte("pool \"a\" {\n  provider = \"local\"\n  max      = 2\n}\n")
	files := map[string]*hcl.File{"/etc/rpacloud/main.hcl": {Bytes: src}}
	p := &configPlan{}
	p.Diagnostics = append(p.Diagnostics, struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
		Location string `json:"location"`
	}{"error", "Unsupported argument", "An argument named \"max\" is not expected here.", "main.hcl:3:3"},
		struct {
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail"`
			Location string `json:"location"`
		}{"error", "Elsewhere", "", "other.hcl:1:1"})
	var b bytes.Buffer
	if err := config.WriteDiagnostics(&b, files, located(p, files, map[string]string{"main.hcl": "/etc/rpacloud/main.hcl"})); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"/etc/rpacloud/main.hcl:3:3: error: Unsupported argument",
		"     3 |   max      = 2\n       |   ^\n",
		"rpacloud: error: other.hcl:1:1: Elsewhere",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
