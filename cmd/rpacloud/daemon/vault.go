package daemon

import (
	"context"
	"sync"

	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/graph"
)

// vaultState is the daemon's credentials service; svc is nil when the
// configuration has no vault block (credential features off).
type vaultState struct {
	svc      *credentials.Service
	bindings *credentials.Bindings
}

// openVault prepares the credentials service without contacting Vault: a
// daemon whose Vault is sealed or down still starts and serves; /healthz
// says so, and attempts that need credentials fail naming them.
func (d *Daemon) openVault() error {
	d.vault = &vaultState{bindings: credentials.NewBindings(d.db.Client, d.bindingsConfig())} // reload.go: retired processes too
	if d.opts.Config.Vault == nil {
		d.log.Warn("no vault block: credential features are off; processes that bind credentials will fail their attempts")
		return nil
	}
	svc, err := credentials.New(credentials.Options{Vault: d.opts.Config.Vault, Logger: d.log, Metrics: d.metrics})
	if err != nil {
		return err
	}
	d.vault.svc = svc
	return nil
}

// runVault keeps the daemon's Vault token alive and ends the grants of
// attempts as they finish, until ctx ends.
func (d *Daemon) runVault(ctx context.Context) {
	if d.vault == nil || d.vault.svc == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.vault.svc.Run(ctx) })
	wg.Go(func() { d.vault.svc.FollowAttempts(ctx, d.bus) })
	wg.Wait()
	d.vault.svc.Close()
}

// vaultResolver fills the resolver's credential services.
func (d *Daemon) vaultResolver(res *graph.Resolver) {
	if d.vault != nil {
		res.Vault, res.CredentialBindings = d.vault.svc, d.vault.bindings
	}
}

// vaultHealth is Vault's part of /healthz; "off" when not configured.
func (d *Daemon) vaultHealth(ctx context.Context) credentials.Health {
	if d.vault == nil {
		return credentials.Health{State: credentials.StateOff}
	}
	return d.vault.svc.Health(ctx)
}
