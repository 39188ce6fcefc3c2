package examples

import (
	"os"
	"testing"
)

// The embedded quickstart is byte for byte the file on disk.
func TestQuickstartSources(t *testing.T) {
	srcs := QuickstartSources()
	if len(srcs) == 0 {
		t.Fatal("no embedded quickstart files")
	}
	for name, b := range srcs {
		disk, err := os.ReadFile(name)
		if err != nil {
			t.Fatalf("embedded %s: %v", name, err)
		}
		if string(disk) != string(b) {
			t.Errorf("embedded %s differs from the file", name)
		}
	}
}
