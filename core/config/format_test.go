package config

import (
	"os"
	"path/filepath"
	"testing"
)

const messy = `# comment stays
pool "p" {
provider="local"
    min = 1
  max=  4 # trailing comment
      period = "15s"
}
process "x" {
	pool = "p"
  builtin="echo"
  schedule "s" {
  cron="0 9 * * *"
  }
}`

const canonical = `# comment stays
pool "p" {
  provider = "local"
  min      = 1
  max      = 4 # trailing comment
  period   = "15s"
}
process "x" {
  pool    = "p"
  builtin = "echo"
  schedule "s" {
    cron = "0 9 * * *"
  }
}
`

func TestFormat(t *testing.T) {
	out, diags := Format("m.hcl", []byte(messy))
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if string(out) != canonical {
		t.Errorf("got:\n%s\nwant:\n%s", out, canonical)
	}
	again, _ := Format("m.hcl", out)
	if string(again) != string(out) {
		t.Errorf("Format is not idempotent:\n%s", again)
	}
}

func TestFormatRefusesBrokenFiles(t *testing.T) {
	out, diags := Format("b.hcl", []byte("pool \"p\" {\n  max = \n"))
	if !diags.HasErrors() || out != nil {
		t.Fatalf("got %q, %v", out, diags)
	}
	if diags[0].Subject == nil || diags[0].Subject.Filename != "b.hcl" {
		t.Errorf("diagnostic without file: %+v", diags[0])
	}
}

// Every fixture and example is a fixed point of Format after one pass.
func TestFormatIdempotentOnAllFiles(t *testing.T) {
	var names []string
	for _, pattern := range []string{"testdata/*.hcl", "testdata/bad/*.hcl", "testdata/bad/*/*.hcl", "../../examples/*/*.hcl"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m...)
	}
	for _, n := range names {
		src, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		once, diags := Format(n, src)
		if diags.HasErrors() {
			continue // the syntax fixtures
		}
		twice, _ := Format(n, once)
		if string(once) != string(twice) {
			t.Errorf("%s: Format is not idempotent", n)
		}
	}
}
