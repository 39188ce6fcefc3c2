package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// loadDisk writes src as a configuration file and loads it as the daemon
// does, so the files the server block names are read.
func loadDisk(t *testing.T, src string) (*config.Config, hcl.Diagnostics) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.hcl")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags, _ := config.Load(p)
	return cfg, diags
}

func TestServerTLS(t *testing.T) {
	ca := sdktest.NewCA(t)
	now := time.Now()
	cert, key := ca.Issue(t, "good", "rpa.test", now.Add(-time.Hour), now.Add(time.Hour))
	_, otherKey := ca.Issue(t, "other", "other.test", now.Add(-time.Hour), now.Add(time.Hour))
	expired, expiredKey := ca.Issue(t, "old", "old.test", now.Add(-48*time.Hour), now.Add(-time.Hour))
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")

	cfg, diags := loadDisk(t, "server {\n  listen        = \"127.0.0.1:8443\"\n  tls_cert_file = \""+cert+"\"\n  tls_key_file  = \""+key+"\"\n  tls_min_version = \"1.3\"\n}\n")
	if len(diags) > 0 {
		t.Fatalf("valid pair: %v", problems(diags))
	}
	if s := cfg.Server; s.TLSCertFile != cert || s.TLSKeyFile != key || !s.TLSOn() || s.PublicURL != "https://127.0.0.1:8443" || s.TLSMin() != 0x0304 {
		t.Errorf("server: %+v", s)
	}
	cfg, _ = loadDisk(t, "server {}\n")
	if cfg.Server.TLSOn() || cfg.Server.TLSMin() != 0x0303 || !strings.HasPrefix(cfg.Server.PublicURL, "http://") {
		t.Errorf("default: %+v", cfg.Server)
	}

	for _, c := range []struct {
		name, body string
		want       []string // "line: severity: summary"
		detail     string   // in the first diagnostic's detail
	}{
		{"cert without key", `tls_cert_file = "` + cert + `"`, []string{"2: error: Missing tls_key_file"}, "needs tls_key_file"},
		{"key without cert", `tls_key_file = "` + key + `"`, []string{"2: error: Missing tls_cert_file"}, "needs tls_cert_file"},
		{"empty cert", "tls_cert_file = \"\"\n  tls_key_file = \"" + key + "\"", []string{"2: error: Invalid tls_cert_file"}, "must not be empty"},
		{"missing cert file", "tls_cert_file = \"" + missing + "\"\n  tls_key_file = \"" + key + "\"", []string{"2: error: Invalid TLS certificate"}, "certificate file " + missing + ": no such file"},
		{"missing key file", "tls_cert_file = \"" + cert + "\"\n  tls_key_file = \"" + missing + "\"", []string{"3: error: Invalid TLS certificate"}, "key file " + missing + ": no such file"},
		{"cert not PEM", "tls_cert_file = \"" + garbage + "\"\n  tls_key_file = \"" + key + "\"", []string{"2: error: Invalid TLS certificate"}, "certificate file " + garbage + ": no PEM"},
		{"key of another certificate", "tls_cert_file = \"" + cert + "\"\n  tls_key_file = \"" + otherKey + "\"", []string{"3: error: Invalid TLS certificate"}, "private key does not match public key"},
		{"key not PEM", "tls_cert_file = \"" + cert + "\"\n  tls_key_file = \"" + garbage + "\"", []string{"3: error: Invalid TLS certificate"}, "key file " + garbage},
		{"a directory", "tls_cert_file = \"" + filepath.Dir(cert) + "\"\n  tls_key_file = \"" + key + "\"", []string{"2: error: Invalid TLS certificate"}, "not a regular file"},
		{"expired", "tls_cert_file = \"" + expired + "\"\n  tls_key_file = \"" + expiredKey + "\"", []string{"2: warning: TLS certificate not valid now"}, "expired on"},
		{"bad min version", `tls_min_version = "1.1"`, []string{"2: error: Invalid tls_min_version"}, `use "1.2" or "1.3"`},
		{"min version without TLS", `tls_min_version = "1.2"`, []string{"2: warning: tls_min_version without TLS"}, "no effect"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, diags := loadDisk(t, "server {\n  "+c.body+"\n}\n")
			var got []string
			for _, p := range problems(diags) {
				got = append(got, strings.TrimPrefix(p, "s.hcl:"))
			}
			for i := range got {
				if j := strings.Index(got[i], ":"); j > 0 { // drop the column
					if k := strings.Index(got[i][j+1:], ":"); k >= 0 {
						got[i] = got[i][:j] + got[i][j+1+k:]
					}
				}
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if !strings.Contains(diags[0].Detail, c.detail) {
				t.Errorf("detail %q does not say %q", diags[0].Detail, c.detail)
			}
			if strings.Contains(diags[0].Detail, "PRIVATE KEY") {
				t.Errorf("a key's content in a diagnostic: %s", diags[0].Detail)
			}
		})
	}

	// A configuration sent through the API names files of the daemon's
	// host it may not read: the pair is not checked there (the server
	// block is never applied live), and no "File not available" refuses
	// an operator's apply of the files the daemon runs.
	cfg, diags, _ = config.LoadSources(map[string][]byte{"s.hcl": []byte("server {\n  tls_cert_file = \"/nonexistent.crt\"\n  tls_key_file = \"/nonexistent.key\"\n}\n")})
	if len(diags) > 0 || cfg.Server.TLSCertFile != "/nonexistent.crt" {
		t.Errorf("API sources: %v %+v", problems(diags), cfg.Server)
	}
}

func TestLoadCertificateErrors(t *testing.T) {
	ca := sdktest.NewCA(t)
	now := time.Now()
	cert, key := ca.Issue(t, "a", "a.test", now.Add(-time.Hour), now.Add(time.Hour))
	_, otherKey := ca.Issue(t, "b", "b.test", now.Add(-time.Hour), now.Add(time.Hour))
	pair, err := config.LoadCertificate(cert, key)
	if err != nil || pair.Leaf == nil || pair.Leaf.Subject.CommonName != "a.test" {
		t.Fatalf("good pair: %v", err)
	}
	_, err = config.LoadCertificate(cert, otherKey)
	var ce *config.CertificateError
	if !errors.As(err, &ce) || !ce.Key || ce.File != otherKey {
		t.Fatalf("mismatch: %#v", err)
	}
	keyPEM, _ := os.ReadFile(otherKey)
	if strings.Contains(err.Error(), string(keyPEM[30:60])) {
		t.Error("the key's content is in the error")
	}
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.LoadCertificate(big, key); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("oversized file: %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte("server {\n  trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1/32\", \"fd00::/8\"]\n}\n")})
	if len(diags) > 0 || !reflect.DeepEqual(cfg.Server.TrustedProxies, []string{"10.0.0.0/8", "127.0.0.1/32", "fd00::/8"}) {
		t.Fatalf("%v %+v", problems(diags), cfg.Server.TrustedProxies)
	}
	_, diags, _ = config.LoadSources(map[string][]byte{"s.hcl": []byte("server {\n  trusted_proxies = [\n    \"10.0.0.0/8\",\n    \"10.1.2.3\",\n    \"10.0.0.1/8\",\n    \"nonsense\",\n    \"::1\",\n    \"10.0.0.0/40\",\n  ]\n}\n")})
	want := []string{
		"s.hcl:4:5: error: Invalid trusted_proxies entry",
		"s.hcl:5:5: error: Invalid trusted_proxies entry",
		"s.hcl:6:5: error: Invalid trusted_proxies entry",
		"s.hcl:7:5: error: Invalid trusted_proxies entry",
		"s.hcl:8:5: error: Invalid trusted_proxies entry",
	}
	if got := problems(diags); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i, detail := range []string{`"10.1.2.3/32"`, `the network is "10.0.0.0/8"`, "CIDR notation", `"::1/128"`, "CIDR notation"} {
		if !strings.Contains(diags[i].Detail, detail) {
			t.Errorf("%d: %q does not say %q", i, diags[i].Detail, detail)
		}
	}
}

// A change of the TLS or proxy attributes is a server change: planned
// under its HCL names, and refused live (it needs a restart).
func TestTLSPlan(t *testing.T) {
	load := func(src string) *config.Config {
		t.Helper()
		cfg, diags, _ := config.LoadSources(map[string][]byte{"s.hcl": []byte(src)})
		if diags.HasErrors() {
			t.Fatal(problems(diags))
		}
		return cfg
	}
	old := load("server {\n  trusted_proxies = [\"10.0.0.0/8\"]\n}\n")
	next := load("server {\n  trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1/32\"]\n  tls_cert_file   = \"/etc/tls.crt\"\n  tls_key_file    = \"/etc/tls.key\"\n  tls_min_version = \"1.3\"\n}\n")
	p := config.Diff(old, next)
	if len(p.NeedsRestart()) != 1 {
		t.Fatalf("plan:\n%s", p)
	}
	for _, want := range []string{"trusted_proxies:", "tls_cert_file:", "tls_key_file:", "tls_min_version:", "public_url: http://127.0.0.1:8080 → https://127.0.0.1:8080"} {
		if !strings.Contains(p.String(), want) {
			t.Errorf("the plan does not say %q:\n%s", want, p)
		}
	}
}

// A key this user may not read (validate or config plan run by an
// operator, the key the daemon's user's) is a warning, not an error.
func TestServerTLSUnreadableKey(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	ca := sdktest.NewCA(t)
	cert, key := ca.Issue(t, "k", "k.test", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err := os.Chmod(key, 0); err != nil {
		t.Fatal(err)
	}
	_, diags := loadDisk(t, "server {\n  tls_cert_file = \""+cert+"\"\n  tls_key_file  = \""+key+"\"\n}\n")
	if got := problems(diags); len(got) != 1 || !strings.HasSuffix(got[0], "3:19: warning: TLS files not checked") {
		t.Fatalf("%q", got)
	}
}
