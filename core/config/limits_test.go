package config_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
)

var defaultLimits = config.Limits{
	RequestBodyBytes:      8 << 20,
	WebsocketInitBytes:    64 << 10,
	WebsocketMessageBytes: 1 << 20,
	TokenRecheck:          5 * time.Second,
	ResultBytes:           1 << 20,
}

func TestServerLimits(t *testing.T) {
	src := `server {
  limits {
    request_body_bytes      = 1048576
    websocket_init_bytes    = 4096
    websocket_message_bytes = 262144
    token_recheck           = "2s"
    result_bytes            = 65536
  }
}
`
	cfg, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatal(strings.Join(problems(diags), "\n"))
	}
	want := config.Limits{RequestBodyBytes: 1 << 20, WebsocketInitBytes: 4096, WebsocketMessageBytes: 256 << 10, TokenRecheck: 2 * time.Second, ResultBytes: 64 << 10}
	if cfg.Server.Limits != want {
		t.Errorf("limits: got %+v, want %+v", cfg.Server.Limits, want)
	}

	// An empty block keeps every default.
	cfg, diags, _ = config.LoadSources(map[string][]byte{"s.hcl": []byte("server {\n  limits {}\n}\n")})
	if diags.HasErrors() || cfg.Server.Limits != defaultLimits {
		t.Errorf("empty limits block: %+v %v", cfg.Server.Limits, problems(diags))
	}

	bad := `server {
  limits {
    request_body_bytes      = 10
    websocket_init_bytes    = 2147483648
    websocket_message_bytes = 1.5
    token_recheck           = "1h"
  }
  limits {}
}
`
	_, diags, _ = config.LoadSources(map[string][]byte{"s.hcl": []byte(bad)})
	got := strings.Join(problems(diags), "\n")
	for _, w := range []string{
		"s.hcl:3:31: error: Invalid request_body_bytes",
		"s.hcl:4:31: error: Invalid websocket_init_bytes",
		"s.hcl:5:31: error: Incorrect attribute value type",
		"s.hcl:6:31: error: Invalid token_recheck",
		"s.hcl:8:3: error: Duplicate limits block",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}

// A configuration path that is, or links to, a device, a pipe or a huge
// file is refused at once with its name, without reading it.
func TestLoadRefusesWhatIsNotAConfigFile(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.hcl")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(t.TempDir(), "huge.hcl")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: takes no disk, but its size is over the limit.
	if err := f.Truncate(config.MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, c := range []struct{ path, name, want string }{
		{zero, zero, "not a regular file (a device)"},
		{dir, zero, "not a regular file (a device)"}, // found through its directory
		{huge, huge, "over the limit of 4194304 bytes"},
	} {
		_, diags, _ := config.Load(c.path)
		if len(diags) != 1 || diags[0].Subject == nil || diags[0].Subject.Filename != c.name ||
			diags[0].Summary != "Cannot read configuration file" || !strings.Contains(diags[0].Detail, c.want) || !strings.Contains(diags[0].Detail, c.name) {
			t.Errorf("%s: %v", c.path, diags)
		}
	}

	// rpacloud validate and rpacloud fmt say so too.
	var out, errOut bytes.Buffer
	if code := config.ValidateCommand(context.Background(), nil, []string{zero}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "not a regular file") {
		t.Errorf("validate: exit %d, %s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := config.FmtCommand(context.Background(), []string{zero}, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "not a regular file") {
		t.Errorf("fmt: exit %d, %s%s", code, out.String(), errOut.String())
	}
}
