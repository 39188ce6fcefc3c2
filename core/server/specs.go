package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/robot"
	"github.com/rpacloud/rpacloud/core/viewer"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// robotProcessSpec serves GET /robot/v1/processes/{name}: what a robot of
// the process's pool needs to run it (flow, network profile, vendor
// settings). Robots of other pools and other tokens are refused; no
// secret is in it.
func (d *Daemon) robotProcessSpec(w http.ResponseWriter, r *http.Request) {
	p, ok := viewer.FromContext(r.Context())
	if !ok || p.Role != viewer.Robot || p.RobotID == nil {
		http.Error(w, "robot token required", http.StatusForbidden)
		return
	}
	name := r.PathValue("name")
	spec, pool, found := ProcessSpec(d.opts.Config, name)
	if !found {
		http.Error(w, "no crawler or vendor process "+name, http.StatusNotFound)
		return
	}
	rb, err := d.db.Robot.Get(privacy.DecisionContext(r.Context(), privacy.Allow), *p.RobotID)
	if err != nil {
		http.Error(w, "unknown robot", http.StatusForbidden)
		return
	}
	pl, err := rb.QueryPool().Only(privacy.DecisionContext(r.Context(), privacy.Allow))
	if err != nil || pl.Name != pool {
		http.Error(w, "process "+name+" does not run in this robot's pool", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(spec)
}

// ProcessSpec builds the spec of a crawler or vendor process from the
// configuration, and returns the process's pool.
func ProcessSpec(cfg *config.Config, name string) (*robot.ProcessSpec, string, bool) {
	var proc *config.Process
	for i := range cfg.Processes {
		if cfg.Processes[i].Name == name {
			proc = &cfg.Processes[i]
		}
	}
	if proc == nil || (proc.Kind != "crawler" && proc.Kind != "vendor") {
		return nil, "", false
	}
	spec := &robot.ProcessSpec{Name: proc.Name, Kind: proc.Kind, Runner: proc.Runner, Package: proc.Package}
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
