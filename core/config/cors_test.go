package config_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

func TestServerCORSOrigins(t *testing.T) {
	src := `server {
  cors_origins = ["https://ops.example.com", "HTTP://Localhost:5173"]
}
`
	cfg, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatal(strings.Join(problems(diags), "\n"))
	}
	// Lower case, as browsers send the Origin header.
	if want := []string{"https://ops.example.com", "http://localhost:5173"}; !slices.Equal(cfg.Server.CORSOrigins, want) {
		t.Errorf("got %q, want %q", cfg.Server.CORSOrigins, want)
	}
	// None by default: same origin only.
	cfg, _, _ = config.LoadSources(map[string][]byte{"s.hcl": []byte("server {}\n")})
	if len(cfg.Server.CORSOrigins) != 0 {
		t.Errorf("default: %q", cfg.Server.CORSOrigins)
	}

	// Each bad entry is pointed at, where it is written.
	bad := `server {
  cors_origins = [
    "https://ok.example.com",
    "*",
    "https://ops.example.com/",
    "ops.example.com",
    "https://ops.example.com/app",
  ]
}
`
	_, diags, _ = config.LoadSources(map[string][]byte{"s.hcl": []byte(bad)})
	got := problems(diags)
	want := []string{
		"s.hcl:4:5: error: Invalid CORS origin",
		"s.hcl:5:5: error: Invalid CORS origin",
		"s.hcl:6:5: error: Invalid CORS origin",
		"s.hcl:7:5: error: Invalid CORS origin",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var details []string
	for _, d := range diags {
		details = append(details, d.Detail)
	}
	for _, w := range []string{`cors_origins[1] = "*": wildcards are not allowed`, `cors_origins[2] = "https://ops.example.com/": an origin has no path`, `cors_origins[3] = "ops.example.com": not an origin`} {
		if !strings.Contains(strings.Join(details, "\n"), w) {
			t.Errorf("details %q do not say %q", details, w)
		}
	}
}
