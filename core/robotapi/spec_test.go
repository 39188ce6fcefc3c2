package robotapi

import (
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

func TestBuildSpec(t *testing.T) {
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(`
provider "local" { plugin = "local" }
network "bureau" {
  proxy = "http://egress.internal:3128"
  allow = ["etax.example.gov"]
  deny  = ["*"]
}
pool "p" {
  provider = "local"
  max      = 2
  network  = "bureau"
}
vendor "ui" {
  type        = "uipath"
  url         = "https://orch.example"
  folder      = "Prod"
  credentials = "vault:secret/rpacloud/vendors/ui#client_secret"
  client_id   = "app"
  poll_interval = "30s"
}
process "crawl" {
  pool        = "p"
  crawler     = "browser"
  flow        = "f"
  credentials = ["etax/acme"]
}
process "job" {
  pool    = "p"
  vendor  = "ui"
  package = "TaxFiling.VAT"
}
process "echo" {
  pool    = "p"
  builtin = "echo"
}
flow "f" {
  step "navigate" { url = "https://etax.example.gov/" }
  step "fill" {
    selector = "#password"
    value    = "{{credentials.etax/acme.password}}"
  }
}
`)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	spec, pool, ok := BuildSpec(cfg, "crawl")
	if !ok || pool != "p" || spec.Flow == nil || len(spec.Flow.Steps) != 2 || spec.Flow.Steps[1].Source != "a.hcl:38" {
		t.Fatalf("crawler spec %+v %v", spec, spec.Flow)
	}
	if spec.NetworkName != "bureau" || spec.Network.Proxy != "http://egress.internal:3128" || spec.Network.Deny[0] != "*" {
		t.Errorf("network %+v", spec.Network)
	}
	job, _, ok := BuildSpec(cfg, "job")
	if !ok || job.VendorType != "uipath" || job.Vendor["url"] != "https://orch.example" || job.Vendor["client_id"] != "app" || job.Vendor["folder"] != "Prod" || job.Vendor["poll_interval"] != "" {
		t.Fatalf("vendor spec %+v", job)
	}
	for k, v := range job.Vendor {
		if strings.HasPrefix(v, "vault:") || k == "credentials" {
			t.Errorf("a secret reference reached the spec: %s=%s", k, v)
		}
	}
	if _, _, ok := BuildSpec(cfg, "echo"); ok {
		t.Error("builtin processes have no spec")
	}
	if _, _, ok := BuildSpec(cfg, "nope"); ok {
		t.Error("unknown process")
	}
}
