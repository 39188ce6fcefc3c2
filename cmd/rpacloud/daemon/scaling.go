package daemon

import (
	"context"
	"errors"
	"sync"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/scale/poolconf"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// scaling runs the elastic scaler inside the fleet loop, which runs only
// on the daemon that leads (leaderServices); term is its lease term, the
// scaler's fencing token.
type scaling struct {
	d      *Daemon
	scaler *scale.Scaler
	term   int64

	mu    sync.Mutex
	cfg   *config.Config // the configuration pools were read from
	pools map[string]poolconf.Pool
}

// settings returns the pools' settings of the configuration now, read
// again after a reload.
func (s *scaling) settings() map[string]poolconf.Pool {
	cfg := s.d.live().Current()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg != s.cfg {
		pools, err := poolconf.All(cfg)
		if err != nil {
			// The loader already checked every schedule; keep scaling
			// with the seed's defaults rather than stop the daemon.
			s.d.log.Error("scaler: pool settings", "err", err)
		}
		s.cfg, s.pools = cfg, pools
	}
	return s.pools
}

func (d *Daemon) newScaling(term int64) *scaling {
	if d.fleet.Network == nil {
		d.fleet.Network = func(name string) *sdk.NetworkProfile { return networkProfiles(d.live().Current())(name) }
	}
	if d.fleet.Setup == nil {
		d.fleet.Setup = func(name string) *sdk.VMSetup { return poolSetups(d.live().Current())(name) }
	}
	if d.fleet.RecordEndpoint == nil {
		d.fleet.RecordEndpoint = func(ctx context.Context, vmID int, ra sdk.RemoteAccess) error {
			return delivery.RecordEndpoint(ctx, d.db.Client, vmID, delivery.Endpoint{
				Protocol: ra.Protocol, Host: ra.Host, Port: ra.Port, Username: ra.Username})
		}
	}
	s := &scaling{d: d, term: term}
	s.scaler = &scale.Scaler{Fleet: d.fleet, Pools: s.settings, Metrics: d.metrics}
	return s
}

// step scales one pool when its period is due.
func (s *scaling) step(ctx context.Context, p *ent.Pool) {
	due, err := s.scaler.Due(ctx, p)
	if err != nil {
		s.d.log.Error("scaler: read pool", "pool", p.Name, "err", err)
		return
	}
	if !due {
		return
	}
	if _, err := s.scaler.Step(ctx, p, s.term); err != nil && ctx.Err() == nil && !errors.Is(err, scale.ErrProviderDown) {
		s.d.log.Error("scaler: step", "pool", p.Name, "err", err)
	}
}

// networkProfiles serves the configuration's network blocks to the fleet,
// so rented robots get their pool's proxy, DNS and allow/deny lists.
func networkProfiles(cfg *config.Config) func(string) *sdk.NetworkProfile {
	m := map[string]*sdk.NetworkProfile{}
	for _, n := range cfg.Networks {
		m[n.Name] = &sdk.NetworkProfile{Proxy: n.Proxy, DNS: n.DNS, Allow: n.Allow, Deny: n.Deny}
	}
	return func(name string) *sdk.NetworkProfile { return m[name] }
}

// poolSetups maps each pool to the VM preparation its HCL declares.
func poolSetups(cfg *config.Config) func(string) *sdk.VMSetup {
	m := map[string]*sdk.VMSetup{}
	for _, p := range cfg.Pools {
		if p.Setup != nil {
			m[p.Name] = &sdk.VMSetup{Software: p.Setup.Software, ConfigFiles: p.Setup.ConfigFiles, RemoteAccess: p.Setup.RemoteAccess}
		}
	}
	return func(name string) *sdk.VMSetup { return m[name] }
}
