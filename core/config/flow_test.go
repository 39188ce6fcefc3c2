package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
)

const flowBase = `
provider "local" { plugin = "local" }
pool "p" {
  provider = "local"
  max      = 2
}
process "filing" {
  pool        = "p"
  crawler     = "browser"
  flow        = "f"
  credentials = ["etax/acme"]
}
`

func TestFlowDecodes(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(flowBase + `
flow "f" {
  crawler = "browser"
  step "navigate" { url = "https://etax.example.gov/login" }
  step "fill" {
    selector = "#password"
    value    = "{{credentials.etax/acme.password}}"
  }
  step "wait_for" {
    selector = "#receipt, .field-error"
    timeout  = "20s"
  }
  step "assert" {
    selector   = ".field-error"
    state      = "absent"
    data_error = true
    message    = "refused"
  }
  step "extract" {
    selector = "#receipt"
    output   = "receipt"
  }
  step "screenshot" { output = "done-{{outputs.receipt}}" }
}
flow "api" {
  crawler = "http"
  step "request" {
    url     = "https://etax.example.gov/api/login"
    json    = "{\"user\":\"{{input.user}}\"}"
    headers = { "X-Client" = "rpacloud" }
    status  = 200
  }
  step "extract" {
    json_path = "token"
    output    = "token"
  }
  step "request" {
    url  = "https://etax.example.gov/api/file"
    form = { token = "{{outputs.token}}", period = "{{input.period}}" }
  }
}
`)})
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", strings.Join(problems(diags), "\n"))
	}
	if len(cfg.Flows) != 2 || cfg.Processes[0].Flow != "f" {
		t.Fatalf("flows %+v, process %+v", cfg.Flows, cfg.Processes[0])
	}
	f := cfg.Flows[0]
	var actions []string
	for _, s := range f.Steps {
		actions = append(actions, s.Action)
	}
	if strings.Join(actions, ",") != "navigate,fill,wait_for,assert,extract,screenshot" {
		t.Errorf("steps out of order: %v", actions)
	}
	if s := f.Steps[2]; s.Timeout != 20*time.Second || s.Selector != "#receipt, .field-error" {
		t.Errorf("wait_for: %+v", s)
	}
	if s := f.Steps[3]; !s.DataError || s.State != "absent" || s.Message != "refused" || s.Source != "a.hcl:25" {
		t.Errorf("assert: %+v (source %s)", s, s.Source)
	}
	api := cfg.Flows[1]
	if api.Steps[0].Status != 200 || api.Steps[0].Headers["X-Client"] != "rpacloud" || api.Steps[2].Form["period"] != "{{input.period}}" {
		t.Errorf("api flow: %+v", api.Steps)
	}
}

func TestFlowErrors(t *testing.T) {
	cfg := flowBase + `
flow "f" {
  crawler = "browser"
  step "navigate" { url = "https://x/" }
  step "type" { selector = "#a" }
  step "fill" { selector = "#a" }
  step "click" {
    selector = "#b"
    output   = "x"
  }
  step "fill" {
    selector = "#c"
    value    = "{{env.HOME}}"
  }
  step "fill" {
    selector = "#d"
    value    = "{{outputs.later}}"
  }
  step "fill" {
    selector = "#password"
    value    = "hunter2"
  }
  step "fill" {
    selector = "#pin"
    value    = "{{credentials.bank/acme.pin}}"
  }
  step "request" { url = "https://x/api" }
  step "assert" {
    selector = ".e"
    state    = "gone"
  }
}
process "echo" {
  pool    = "p"
  builtin = "echo"
  flow    = "f"
}
process "lost" {
  pool    = "p"
  crawler = "http"
  flow    = "nope"
}
`
	_, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(cfg)})
	got := strings.Join(problems(diags), "\n")
	if n := len(diags); n != 11 {
		t.Errorf("%d diagnostics, want 11:\n%s", n, got)
	}
	for _, d := range diags {
		if strings.Contains(d.Detail, "hunter2") {
			t.Errorf("a diagnostic repeats the literal secret: %s", d.Detail)
		}
	}
	for _, want := range []string{
		"a.hcl:17:8: error: Unknown step",
		"a.hcl:18:3: error: Missing step attribute",
		"a.hcl:21:5: error: Unsupported step attribute",
		"a.hcl:25:16: error: Invalid flow variable",
		"a.hcl:29:16: error: Output used before it is extracted",
		"a.hcl:33:16: error: Secret given as a literal",
		"a.hcl:37:16: error: Credential not granted",
		"a.hcl:39:8: error: Step not supported by the crawler",
		"a.hcl:42:16: error: Invalid value for state",
		"a.hcl:45:1: error: Flow on a non-crawler process",
		"a.hcl:53:13: error: Undefined flow",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
