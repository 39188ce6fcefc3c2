package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/monitor/vendorpoll"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// runVendorPollers pulls every vendor block's job and robot state into the
// monitoring model, so that runs a vendor started on its own schedules
// appear beside rpacloud's. It runs among the leader services, so that
// each vendor change is recorded once. After a reload, the pollers of
// vendor blocks that changed or left are stopped with their plugins and
// those of new or changed blocks started; unchanged ones keep running.
func (d *Daemon) runVendorPollers(ctx context.Context, _ int64) {
	type poller struct {
		v      config.Vendor
		cancel context.CancelFunc
		done   chan struct{}
	}
	running := map[string]*poller{}
	// The plugin of a block that changed or left is stopped too; when
	// leadership ends, plugins stay for the next term, as before reloads.
	stop := func(name string, plugin bool) {
		p := running[name]
		p.cancel()
		<-p.done
		if plugin {
			d.host.StopVendor(name)
		}
		delete(running, name)
	}
	defer func() {
		for name := range running {
			stop(name, false)
		}
	}()
	var changed <-chan struct{}
	if d.rl != nil {
		changed = d.rl.vendorsChanged
	}
	for {
		want := map[string]config.Vendor{}
		for _, v := range d.live().Current().Vendors {
			want[v.Name] = v
		}
		for _, name := range vendorNames(running) {
			if v, ok := want[name]; !ok || !sameVendor(v, running[name].v) {
				stop(name, true)
			}
		}
		for _, name := range vendorNames(want) {
			if _, ok := running[name]; ok {
				continue
			}
			pctx, cancel := context.WithCancel(ctx)
			p := &poller{v: want[name], cancel: cancel, done: make(chan struct{})}
			running[name] = p
			go func() {
				defer close(p.done)
				d.pollVendor(pctx, p.v)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// pollVendor starts the vendor's plugin (retrying with back-off while its
// secret or the plugin is unavailable) and polls until ctx ends.
func (d *Daemon) pollVendor(ctx context.Context, v config.Vendor) {
	interval := 30 * time.Second
	if s := v.Extra["poll_interval"]; s != "" {
		if dur, err := time.ParseDuration(s); err == nil && dur > 0 {
			interval = dur
		}
	}
	var resolve func(context.Context, config.VaultRef) (string, error)
	if d.vault != nil && d.vault.svc != nil {
		resolve = d.vault.svc.Resolve
	}
	var src vendorpoll.Source
	var cfg map[string]string
	wait := retry.Backoff(5*time.Second, 5*time.Minute)
	for {
		// The schema the plugin itself declares routes the secret: a
		// third-party plugin is not in the built-in table.
		schema, err := d.host.Schema(ctx, sdk.KindVendor, v.Type)
		if err == nil {
			cfg, err = vendorPluginConfig(ctx, v, schema, resolve)
		}
		if err == nil {
			src, err = d.host.Vendor(ctx, v.Name, v.Type, cfg)
			if err == nil {
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		in := wait.NextBackOff()
		d.log.Warn("vendor poller not started", "vendor", v.Name, "err", err, "retry_in", in)
		if !retry.Sleep(ctx, in) {
			return
		}
	}
	d.log.Info("vendor poller started", "vendor", v.Name, "type", v.Type, "interval", interval)
	p := &vendorpoll.Poller{Client: d.db.Client, Bus: d.bus, Name: v.Name, Type: v.Type, Source: src, Interval: interval, Log: d.log}
	p.Run(ctx)
}

// vendorPluginConfig is a vendor block as its plugin takes it: the plain
// attributes, and the secret of `credentials` read from Vault into memory,
// put in the attribute the plugin's schema declares Sensitive
// (sdk.SecretAttribute).
// Other Vault references in the block are not the plugin's (robots get
// theirs with each claim) and stay out, as does the daemon's own
// poll_interval. Errors name the block and the reference, never a value.
func vendorPluginConfig(ctx context.Context, v config.Vendor, schema []sdk.ConfigAttribute, resolve func(context.Context, config.VaultRef) (string, error)) (map[string]string, error) {
	cfg := map[string]string{"url": v.URL}
	if v.Tenant != "" {
		cfg["tenant"] = v.Tenant
	}
	if v.Folder != "" {
		cfg["folder"] = v.Folder
	}
	for k, val := range v.Extra {
		if k != "poll_interval" && !strings.HasPrefix(val, "vault:") {
			cfg[k] = val
		}
	}
	if v.Credentials == "" {
		return cfg, nil
	}
	ref, err := config.ParseVaultRef(v.Credentials)
	if err != nil {
		return nil, fmt.Errorf("vendor %q: credentials: %w", v.Name, err)
	}
	if resolve == nil {
		return nil, fmt.Errorf("vendor %q: credentials %s need Vault, and the daemon has none", v.Name, ref)
	}
	val, err := resolve(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("vendor %q: %w", v.Name, err)
	}
	key, ok := sdk.SecretAttribute(schema, ref.Field)
	if !ok {
		return nil, fmt.Errorf("vendor %q: type %q takes no credentials", v.Name, v.Type)
	}
	cfg[key] = val
	return cfg, nil
}
