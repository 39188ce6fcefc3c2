//go:build unix

package config_test

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

// Opening a FIFO for reading blocks until a writer comes: it is refused
// before it is opened.
func TestLoadRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe.hcl")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, diags, _ := config.Load(fifo)
	if len(diags) != 1 || !strings.Contains(diags[0].Detail, "not a regular file (a named pipe)") {
		t.Errorf("fifo: %v", diags)
	}
}
