package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/rpacloud/rpacloud/core/config"
)

// fuzzFile is the name the fuzzed source is loaded under.
const fuzzFile = "fuzz.hcl"

// fuzzLoadBound is how long loading one fuzz input (at most a few
// kilobytes) may take, generous for a shared, slow machine.
const fuzzLoadBound = 5 * time.Second

// FuzzLoadSources loads arbitrary bytes as one configuration file. It must
// never panic and must answer quickly; every error names the file and a
// place in it; and a secret refused because it was written as a literal
// is never repeated in any diagnostic's text.
func FuzzLoadSources(f *testing.F) {
	var seeds []string
	for _, pat := range []string{
		"../../cmd/rpacloud/quickstart/*.hcl",
		"../../examples/tax-filing/*.hcl",
		"../../examples/tax-filing/demo/*.hcl",
		"testdata/*.hcl",
		"testdata/bad/*.hcl",
		"testdata/bad/*/*.hcl",
	} {
		names, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			seeds = append(seeds, string(b))
		}
	}
	if len(seeds) < 10 {
		f.Fatalf("found only %d seed files; run from core/config", len(seeds))
	}
	// The tax-filing example is one configuration over several files.
	var tax bytes.Buffer
	for _, n := range []string{"customers", "network", "pools", "processes", "server", "vendors"} {
		b, err := os.ReadFile("../../examples/tax-filing/" + n + ".hcl")
		if err != nil {
			f.Fatal(err)
		}
		tax.Write(b)
		tax.WriteByte('\n')
	}
	seeds = append(seeds, tax.String(),
		"",
		"\x00",
		"server {",
		`server { listen = "127.0.0.1:8080" `,
		`provider "p" { plugin = "local" password = "hunter2-literal-secret" }`,
		"provider \"p\" {\n  plugin = \"local\"\n  api_key = \"sk-live-0123456789abcdef\"\n}\n",
		"provider \"p\" {\n  plugin = \"local\"\n  token = 42424242424242\n}\n",
		"provider \"p\" {\n  plugin = \"local\"\n  token = \"vault:kv/x#y\"\n}\n",
		"provider \"p\" {\n  plugin = \"local\"\n  db_url = \"postgres://u:pa55w0rd-in-url@h/db\"\n}\n",
		"vendor \"v\" {\n  client_secret = \"not-a-vault-ref-xyz\"\n}\n",
		"vault {\n  address = \"https://vault:8200\"\n  token = \"s.literal-vault-token\"\n}\n",
		"pool \"p\" {\n  max = \"many\"\n}\n",
		"process \"x\" {\n  pool = \"missing\"\n}\n",
		`a = "${`,
		`a = <<EOT`,
		"customer \"a\" {}\ncustomer \"a\" {}\n",
		strings.Repeat("{", 200),
		strings.Repeat("a = [", 100),
		"\xff\xfe\xfd",
	)
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 64<<10 {
			t.Skip("inputs beyond 64 KiB say nothing more and only slow the fuzzer")
		}
		start := time.Now()
		cfg, diags, files := config.LoadSources(map[string][]byte{fuzzFile: src})
		if d := time.Since(start); d > fuzzLoadBound {
			t.Fatalf("loading %d bytes took %v, over %v", len(src), d, fuzzLoadBound)
		}
		if cfg == nil {
			t.Fatal("LoadSources returned a nil Config")
		}
		if files == nil {
			t.Fatal("LoadSources returned a nil files map")
		}
		for _, d := range diags {
			if d.Severity != hcl.DiagError {
				continue
			}
			if d.Subject == nil || d.Subject.Filename == "" {
				t.Fatalf("error %q (%s) names no file or place", d.Summary, d.Detail)
			}
			if d.Subject.Filename != fuzzFile {
				t.Fatalf("error %q names file %q, want %q", d.Summary, d.Subject.Filename, fuzzFile)
			}
			if d.Subject.Start.Byte < 0 || d.Subject.End.Byte > len(src) || d.Subject.Start.Byte > d.Subject.End.Byte {
				t.Fatalf("error %q has range %d..%d outside the %d-byte file", d.Summary, d.Subject.Start.Byte, d.Subject.End.Byte, len(src))
			}
			if strings.TrimSpace(d.Summary) == "" {
				t.Fatalf("error with an empty summary at %s", d.Subject)
			}
		}
		checkSecretsNotEchoed(t, src, diags)
	})
}

// checkSecretsNotEchoed finds each "Secret given as a literal" error,
// evaluates the literal it points at and insists no diagnostic repeats
// it. Literals shorter than 8 characters, or that occur elsewhere in the
// file (a block name, another attribute), may appear in messages for
// other reasons and are not checked.
func checkSecretsNotEchoed(t *testing.T, src []byte, diags hcl.Diagnostics) {
	t.Helper()
	for _, d := range diags {
		if d.Summary != "Secret given as a literal" || d.Subject == nil {
			continue
		}
		r := *d.Subject
		if r.Start.Byte < 0 || r.End.Byte > len(src) || r.Start.Byte >= r.End.Byte {
			continue
		}
		exprSrc := src[r.Start.Byte:r.End.Byte]
		expr, pd := hclsyntax.ParseExpression(exprSrc, fuzzFile, r.Start)
		if pd.HasErrors() {
			continue
		}
		v, vd := expr.Value(nil)
		if vd.HasErrors() || v.IsNull() || !v.IsKnown() {
			continue
		}
		var secret string
		switch v.Type() {
		case cty.String:
			secret = v.AsString()
		case cty.Number:
			secret = v.AsBigFloat().Text('f', -1)
		default:
			continue
		}
		// A URL's password is the secret there, not the whole URL.
		if i := strings.Index(secret, "://"); i >= 0 {
			rest := secret[i+3:]
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				if c := strings.Index(rest[:at], ":"); c >= 0 {
					secret = rest[c+1 : at]
				}
			}
		}
		if len(secret) < 8 || bytes.Count(src, []byte(secret)) != 1 {
			continue
		}
		for _, e := range diags {
			if strings.Contains(e.Summary, secret) || strings.Contains(e.Detail, secret) {
				t.Fatalf("refused literal secret %q is repeated in diagnostic %q: %s", secret, e.Summary, e.Detail)
			}
		}
	}
}
