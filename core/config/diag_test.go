package config

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestWriteDiagnostics(t *testing.T) {
	src := "pool \"p\" {\n\tprovider = \"local\"\n  max = 0 # 零\n}\ncustomer \"c\" {\n  display_name = \"财务部\"\n  kind = \"team\"\n}\nnetwork \"n\" {\n  dns = {\n    a = 1\n  }\n}\n"
	_, diags, files := LoadSources(map[string][]byte{"a.hcl": []byte(src), "b.hcl": []byte("pool \"p\" {\n  max = 1\n  provider = \"local\"\n}\n")})
	diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Somewhere", Detail: "no place\nat all"})
	var b strings.Builder
	if err := WriteDiagnostics(&b, files, diags); err != nil {
		t.Fatal(err)
	}
	want := `a.hcl:1:1: warning: Pool has no process; No process runs in pool "p", so its robots never get work.
     1 | pool "p" {
       | ^^^^^^^^
a.hcl:2:13: error: Undefined provider; pool "p" provider refers to provider "local", which is not declared. No provider block is declared.
     2 | 	provider = "local"
       | 	           ^^^^^^^
a.hcl:3:9: error: Invalid pool size; max = 0: max must be 1 or more, or the pool can never run a task.
     3 |   max = 0 # 零
       |         ^
a.hcl:7:10: error: Invalid value for kind; kind = "team" is not allowed; use one of "company" or "department".
     7 |   kind = "team"
       |          ^^^^^^
a.hcl:10:9: error: Incorrect attribute value type; Inappropriate value for attribute "dns": list of string required.
    10 |   dns = {
       |         ^
b.hcl:1:6: error: Duplicate pool "p"; A pool named "p" was previously declared at a.hcl:1.
     1 | pool "p" {
       |      ^^^
b.hcl:3:14: error: Undefined provider; pool "p" provider refers to provider "local", which is not declared. No provider block is declared.
     3 |   provider = "local"
       |              ^^^^^^^
rpacloud: error: Somewhere; no place at all
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// The marker sits under the subject even after wide characters.
func TestSnippetWideCharacters(t *testing.T) {
	src := []byte(`customer "c" { display_name = "财务部", kind = "x" }`)
	start := strings.Index(string(src), `"x"`)
	rng := hcl.Range{Filename: "c.hcl", Start: hcl.Pos{Line: 1, Column: 40, Byte: start}, End: hcl.Pos{Line: 1, Column: 43, Byte: start + 3}}
	var b strings.Builder
	writeSnippet(&b, src, rng, false)
	lines := strings.Split(b.String(), "\n")
	marker := strings.TrimPrefix(lines[1], "       | ")
	// "财务部" is nine bytes, three runes and six columns.
	if want := strings.Repeat(" ", start-9+6) + "^^^"; marker != want {
		t.Errorf("marker:\n%q\nwant\n%q", marker, want)
	}
}
