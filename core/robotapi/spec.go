package robotapi

import (
	"strings"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// BuildSpec builds the spec of a crawler or vendor process from the
// configuration, and returns the process's pool; found is false for
// unknown and builtin processes, which have none.
func BuildSpec(cfg *config.Config, name string) (spec *robotwire.ProcessSpec, pool string, found bool) {
	var proc *config.Process
	for i := range cfg.Processes {
		if cfg.Processes[i].Name == name {
			proc = &cfg.Processes[i]
		}
	}
	if proc == nil || (proc.Kind != "crawler" && proc.Kind != "vendor") {
		return nil, "", false
	}
	spec = &robotwire.ProcessSpec{Name: proc.Name, Kind: proc.Kind, Runner: proc.Runner, Package: proc.Package}
	for _, f := range cfg.Flows {
		if f.Name == proc.Flow {
			spec.Flow = &sdk.Flow{Name: f.Name, Steps: f.Steps}
		}
	}
	for _, pl := range cfg.Pools {
		if pl.Name != proc.Pool || pl.Network == "" {
			continue
		}
		for _, n := range cfg.Networks {
			if n.Name == pl.Network {
				spec.NetworkName = n.Name
				spec.Network = &sdk.NetworkProfile{Proxy: n.Proxy, DNS: n.DNS, Allow: n.Allow, Deny: n.Deny}
			}
		}
	}
	if proc.Kind == "vendor" {
		for _, v := range cfg.Vendors {
			if v.Name != proc.Runner {
				continue
			}
			spec.VendorType = v.Type
			spec.Vendor = map[string]string{"url": v.URL}
			if v.Tenant != "" {
				spec.Vendor["tenant"] = v.Tenant
			}
			if v.Folder != "" {
				spec.Vendor["folder"] = v.Folder
			}
			for k, val := range v.Extra {
				// vault: references are resolved into the claim's
				// credentials, never sent here.
				// poll_interval is the daemon's monitoring setting, not
				// the plugin's, which refuses attributes it does not know.
				if !strings.HasPrefix(val, "vault:") && k != "poll_interval" {
					spec.Vendor[k] = val
				}
			}
		}
	}
	return spec, proc.Pool, true
}
