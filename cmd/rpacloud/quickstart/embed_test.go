package quickstart

import (
	"os"
	"strings"
	"testing"
)

// The embedded quickstart is byte for byte the files in this directory.
func TestSources(t *testing.T) {
	srcs := Sources()
	if _, ok := srcs["quickstart/rpacloud.hcl"]; !ok {
		t.Fatalf("embedded sources: %v", srcs)
	}
	for name, b := range srcs {
		disk, err := os.ReadFile(strings.TrimPrefix(name, "quickstart/"))
		if err != nil {
			t.Fatalf("embedded %s: %v", name, err)
		}
		if string(disk) != string(b) {
			t.Errorf("embedded %s differs from the file", name)
		}
	}
}
