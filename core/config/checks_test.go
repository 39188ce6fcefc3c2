package config

import (
	"github.com/hashicorp/hcl/v2"

	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestHostPatterns(t *testing.T) {
	good := []string{
		"example.com", "*.example.com", "localhost", "etax.example.gov", "intranet_host.corp",
		"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::1", "*", "xn--fiqs8s.cn",
	}
	for _, s := range good {
		if err := checkHostPattern(s); err != nil {
			t.Errorf("checkHostPattern(%q): %v", s, err)
		}
	}
	bad := []string{
		"", "*.", "**.example.com", "foo.*.com", "*example.com", "10.0.0.1/8", "10.0.0.0/33",
		"http://example.com", "example.com:443", "example.com/path", "10.0.0", "-a.example", "a..b",
		"example.com.", "fe80::1%eth0", "exa mple.com",
	}
	for _, s := range bad {
		if err := checkHostPattern(s); err == nil {
			t.Errorf("checkHostPattern(%q) accepted it", s)
		}
	}
}

func TestProxyURL(t *testing.T) {
	for _, s := range []string{"http://proxy:3128", "https://proxy.example", "socks5://10.0.0.1:1080", "socks5h://p:1080/", "http://user@proxy:3128"} {
		if _, err := checkProxyURL(s); err != nil {
			t.Errorf("checkProxyURL(%q): %v", s, err)
		}
	}
	for s, summary := range map[string]string{
		"proxy:3128":                    "Invalid proxy",
		"ftp://proxy:21":                "Invalid proxy",
		"http://proxy:3128/path":        "Invalid proxy",
		"http://u:secret@proxy:3128":    "Secret given as a literal",
		"socks5://u:secret@proxy:1080/": "Secret given as a literal",
	} {
		got, err := checkProxyURL(s)
		if err == nil || got != summary {
			t.Errorf("checkProxyURL(%q) = %q, %v; want %q", s, got, err, summary)
		}
	}
}

func TestVaultRef(t *testing.T) {
	r, err := ParseVaultRef("vault:kv/rpacloud/vendors/uipath#client_secret")
	if err != nil || r != (VaultRef{Path: "kv/rpacloud/vendors/uipath", Field: "client_secret"}) {
		t.Fatalf("got %+v, %v", r, err)
	}
	if r.String() != "vault:kv/rpacloud/vendors/uipath#client_secret" {
		t.Errorf("String() = %q", r.String())
	}
	for _, s := range []string{
		"", "vault:", "vault:kv/x", "vault:#f", "vault:/kv/x#f", "vault:kv/x/#f", "vault:kv//x#f",
		"vault:kv/x#", "vault:kv/x#a#b", "kv/x#f", "Vault:kv/x#f", "vault:kv x#f", "hunter2",
	} {
		if _, err := ParseVaultRef(s); err == nil {
			t.Errorf("ParseVaultRef(%q) accepted it", s)
		}
	}
}

func TestSecretNames(t *testing.T) {
	for _, n := range []string{"password", "client_secret", "api_key", "apikey", "access_key_id", "secret_access_key",
		"token", "auth_token", "private_key", "credentials", "ssh_passphrase", "DB_PASSWORD"} {
		if !IsSecretName(n) {
			t.Errorf("%q should be a secret name", n)
		}
	}
	for _, n := range []string{"token_file", "secret_id_file", "credentials_file", "region", "client_id", "url", "tenant", "key", "poll_interval",
		"token_url", "auth_endpoint", "secrets_manager_uri", "vault_address"} {
		if IsSecretName(n) {
			t.Errorf("%q should not be a secret name", n)
		}
	}
}

func TestStringForm(t *testing.T) {
	tests := []struct {
		v    cty.Value
		want string
	}{
		{cty.StringVal("30s"), "30s"},
		{cty.NumberIntVal(42), "42"},
		{cty.NumberFloatVal(0.5), "0.5"},
		{cty.True, "true"},
		{cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.NumberIntVal(1)}), `["a",1]`},
		{cty.ObjectVal(map[string]cty.Value{"zone": cty.StringVal("b"), "size": cty.NumberIntVal(2)}), `{"size":2,"zone":"b"}`},
		{cty.NullVal(cty.String), ""},
	}
	for _, tt := range tests {
		got, err := stringForm(tt.v)
		if err != nil || got != tt.want {
			t.Errorf("stringForm(%#v) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
}

func TestProviderConfigFromHCL(t *testing.T) {
	cfg, diags, _ := LoadSources(map[string][]byte{"p.hcl": []byte(`
provider "cloud" {
  plugin     = "fakecloud"
  region     = "cn-north-1"
  max_vms    = 40
  spot       = true
  ratio      = 1.5
  zones      = ["a", "b"]
  labels     = { team = "tax" }
  api_key    = "vault:secret/rpacloud/providers/cloud#api_key"
  token_file = "/etc/cloud-token"
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := map[string]string{
		"region": "cn-north-1", "max_vms": "40", "spot": "true", "ratio": "1.5", "zones": `["a","b"]`,
		"labels": `{"team":"tax"}`, "api_key": "vault:secret/rpacloud/providers/cloud#api_key", "token_file": "/etc/cloud-token",
	}
	got := cfg.Providers[0].Config
	if len(got) != len(want) {
		t.Errorf("config: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("config[%q] = %q, want %q", k, got[k], v)
		}
	}
	attrs, _ := cfg.Providers[0].Body.JustAttributes()
	if _, ok := attrs["region"]; !ok || attrs["region"].Range.Start.Line != 4 {
		t.Errorf("Body does not keep the plugin-owned attributes with their ranges: %v", attrs)
	}
}

// An address attribute is written down even when its name mentions a
// secret (token_url is the OAuth endpoint), but not with a password in it.
func TestAddressAttributes(t *testing.T) {
	cfg, diags, _ := LoadSources(map[string][]byte{"v.hcl": []byte(`
vendor "orch" {
  type        = "uipath"
  url         = "https://orch.example"
  token_url   = "https://orch.example/identity/connect/token"
  client_id   = "app"
  credentials = "vault:secret/rpacloud/vendors/orch#client_secret"
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := cfg.Vendors[0].Extra["token_url"]; got != "https://orch.example/identity/connect/token" {
		t.Fatalf("token_url = %q", got)
	}
	var files map[string]*hcl.File
	_, diags, files = LoadSources(map[string][]byte{"v.hcl": []byte(`
vendor "orch" {
  type        = "uipath"
  url         = "https://orch.example"
  web_password = "hunter3-literal"
  token_url   = "https://app:hunter2@orch.example/identity/connect/token"
  client_id   = "app"
  credentials = "vault:secret/rpacloud/vendors/orch#client_secret"
}
`)})
	all := ""
	for _, d := range diags {
		all += d.Summary + ": " + d.Detail + "\n"
	}
	if !diags.HasErrors() || !strings.Contains(all, "Secret given as a literal") || !strings.Contains(all, "token_url") {
		t.Fatalf("a password in token_url: %v", all)
	}
	if strings.Contains(all, "hunter2") || strings.Contains(all, "hunter3") {
		t.Fatalf("the diagnostic repeats the password: %v", diags)
	}
	// The printed form (validate, the daemon's start-up log) shows the
	// source line of each problem: a refused secret is masked there too.
	var out strings.Builder
	if err := WriteDiagnostics(&out, files, diags); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "hunter2") || strings.Contains(out.String(), "hunter3") || !strings.Contains(out.String(), "***") {
		t.Fatalf("printed diagnostics repeat a refused secret:\n%s", out.String())
	}
}
