package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// ProviderClient is a supervised provider plugin. It is safe for
// concurrent use and stays valid across restarts of the plugin process.
type ProviderClient struct {
	h      *Host
	name   string // the provider block
	plugin string
	cfg    map[string]string
	log    *slog.Logger
	kick   chan struct{} // asks the supervisor to check now

	mu       sync.Mutex
	cur      *instance // nil while the plugin is down
	info     sdk.PluginInfo
	path     string
	pid      int
	restarts int
	lastErr  string
	since    time.Time
}

// PluginStatus is a snapshot of a plugin's health, for the dashboard and
// the API.
type PluginStatus struct {
	Name      string // the provider block
	Plugin    string
	Path      string
	PID       int
	Healthy   bool
	Restarts  int
	LastError string
	Since     time.Time // when Healthy last changed
}

func (p *ProviderClient) setUp(inst *instance) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = inst
	p.info = inst.info
	p.path = inst.path
	p.pid = inst.pid
	p.since = time.Now()
}

// takeDown detaches the current process, if any, for the caller to stop.
func (p *ProviderClient) takeDown() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	inst := p.cur
	if inst != nil {
		p.cur = nil
		p.since = time.Now()
	}
	return inst
}

// Healthy reports whether the plugin is up and answered its last health
// check. The scaler freezes a pool whose provider is not healthy.
func (p *ProviderClient) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil
}

// Status returns a snapshot of the plugin's health.
func (p *ProviderClient) Status() PluginStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PluginStatus{
		Name: p.name, Plugin: p.plugin, Path: p.path, PID: p.pid, Healthy: p.cur != nil,
		Restarts: p.restarts, LastError: p.lastErr, Since: p.since,
	}
}

// Info is what the plugin reported about itself at its last start.
func (p *ProviderClient) Info() sdk.PluginInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Create implements sdk.Provider's Create.
func (p *ProviderClient) Create(ctx context.Context, req sdk.CreateRequest) (sdk.Instance, error) {
	var out sdk.Instance
	err := p.call(ctx, "create", func(ctx context.Context, prov sdk.Provider) (err error) {
		out, err = prov.Create(ctx, req)
		return err
	})
	return out, err
}

// Destroy implements sdk.Provider's Destroy.
func (p *ProviderClient) Destroy(ctx context.Context, instanceIDs []string) error {
	return p.call(ctx, "destroy", func(ctx context.Context, prov sdk.Provider) error {
		return prov.Destroy(ctx, instanceIDs)
	})
}

// List implements sdk.Provider's List.
func (p *ProviderClient) List(ctx context.Context) ([]sdk.Instance, error) {
	var out []sdk.Instance
	err := p.call(ctx, "list", func(ctx context.Context, prov sdk.Provider) (err error) {
		out, err = prov.List(ctx)
		return err
	})
	return out, err
}

// call runs one call with a deadline. A plugin that is down fails the call
// at once; one that dies during the call is reported to the supervisor so
// the restart does not wait for the next health check.
func (p *ProviderClient) call(ctx context.Context, op string, fn func(context.Context, sdk.Provider) error) error {
	p.mu.Lock()
	inst := p.cur
	lastErr := p.lastErr
	p.mu.Unlock()
	if inst == nil {
		if lastErr == "" {
			lastErr = "stopped"
		}
		return fmt.Errorf("provider %q (plugin %q): %s: %w: %s", p.name, p.plugin, op, ErrPluginUnavailable, lastErr)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.h.opts.CallTimeout)
		defer cancel()
	}
	err := fn(ctx, inst.prov)
	if err == nil {
		return nil
	}
	if connectionLost(ctx, err) {
		p.checkNow()
		return fmt.Errorf("provider %q (plugin %q): %s: %w: %w", p.name, p.plugin, op, ErrPluginUnavailable, err)
	}
	return fmt.Errorf("provider %q (plugin %q): %s: %w", p.name, p.plugin, op, err)
}

// connectionLost tells a dead or disconnected plugin from an error the
// plugin returned.
func connectionLost(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.Canceled:
		return ctx.Err() == nil // cancelled by the connection, not the caller
	}
	return false
}

func (p *ProviderClient) checkNow() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// A plugin that failed its health check gets little time to exit: it is
// dead or hung, and its pool waits for the restart.
const unhealthyStopTimeout = 2 * time.Second

// supervise pings the plugin every HealthInterval (and whenever a call saw
// the connection drop) and restarts it when it died or stopped answering.
// Without this a crashed plugin stays dead for the daemon's whole life,
// the Nomad Autoscaler's bug.
func (p *ProviderClient) supervise() {
	opts := p.h.opts
	t := time.NewTicker(opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-p.h.closing:
			return
		case <-t.C:
		case <-p.kick:
		}
		p.mu.Lock()
		inst := p.cur
		p.mu.Unlock()
		if inst == nil {
			continue
		}
		err := p.check(inst)
		if err == nil {
			continue
		}
		p.mu.Lock()
		p.cur = nil
		p.lastErr = err.Error()
		p.since = time.Now()
		p.mu.Unlock()
		p.log.Error("provider plugin is down; restarting it", "err", err, "pid", inst.pid)
		p.h.stop(inst, unhealthyStopTimeout)
		if !p.restart() {
			return
		}
	}
}

// check returns why inst is not serving, or nil.
func (p *ProviderClient) check(inst *instance) error {
	if inst.client.Exited() {
		return fmt.Errorf("plugin process %d exited%s", inst.pid, stderrNote(inst.stderr.String()))
	}
	timeout := max(p.h.opts.HealthInterval, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := inst.prov.Ping(ctx); err != nil {
		if inst.client.Exited() {
			return fmt.Errorf("plugin process %d exited%s", inst.pid, stderrNote(inst.stderr.String()))
		}
		return fmt.Errorf("plugin process %d failed its health check: %w", inst.pid, err)
	}
	return nil
}

// restart starts the plugin again, waiting BackoffMin, then twice as long
// after each failure up to BackoffMax. A plugin that cannot work as
// installed (wrong version, wrong name, refused configuration) waits
// BackoffMax: only a new executable or configuration helps, and a tight
// loop would flood the log. It returns false when the host closes.
func (p *ProviderClient) restart() bool {
	opts := p.h.opts
	backoff := retry.Backoff(opts.BackoffMin, opts.BackoffMax)
	delay := backoff.NextBackOff()
	for {
		// h.ctx ends when the host closes.
		if !retry.Sleep(p.h.ctx, delay) {
			return false
		}
		inst, err := p.h.launch(p.h.ctx, p)
		if err == nil {
			select {
			case <-p.h.closing:
				p.h.stop(inst, p.h.opts.StopTimeout)
				return false
			default:
			}
			p.setUp(inst)
			p.mu.Lock()
			p.restarts++
			n := p.restarts
			p.mu.Unlock()
			p.log.Info("provider plugin restarted", "pid", inst.pid, "restarts", n)
			return true
		}
		var cfgErr *ConfigError
		if errors.Is(err, ErrIncompatible) || errors.Is(err, ErrPluginNotFound) || errors.As(err, &cfgErr) {
			delay = opts.BackoffMax
		} else {
			delay = backoff.NextBackOff()
		}
		p.mu.Lock()
		p.lastErr = err.Error()
		p.mu.Unlock()
		p.log.Error("provider plugin restart failed", "err", err, "retry_in", delay)
	}
}
