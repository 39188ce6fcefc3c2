package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// KindClient is a crawler or vendor plugin the host started. Unlike a
// provider, it is not pinged in the background: it is used call by call
// (a robot runs one task at a time), so each call checks the process and
// starts it again when it died, with back-off between failed starts. A
// call in flight when the process dies fails with ErrPluginUnavailable,
// which a robot reports as an execution error so the task is retried.
type KindClient struct {
	h      *Host
	kind   string
	plugin string
	cfg    map[string]string
	log    *slog.Logger

	launchMu sync.Mutex // one start at a time

	mu       sync.Mutex
	cur      *instance
	info     sdk.PluginInfo
	restarts int
	lastErr  string
	nextTry  time.Time
	delay    time.Duration
}

// Crawler returns the crawler plugin pluginName ("browser", "http"),
// starting it now so a missing or incompatible plugin is reported at once.
func (h *Host) Crawler(ctx context.Context, pluginName string, cfg map[string]string) (*CrawlerClient, error) {
	k, err := h.kind(ctx, sdk.KindCrawler, pluginName, pluginName, cfg)
	if err != nil {
		return nil, err
	}
	return &CrawlerClient{k}, nil
}

// Vendor returns the vendor plugin pluginName ("uipath", "aa") configured
// for the vendor block name.
func (h *Host) Vendor(ctx context.Context, name, pluginName string, cfg map[string]string) (*VendorClient, error) {
	k, err := h.kind(ctx, sdk.KindVendor, name, pluginName, cfg)
	if err != nil {
		return nil, err
	}
	return &VendorClient{k}, nil
}

// StopVendor stops the plugin of vendor block name, if it runs, and
// forgets it: its block changed or left the configuration on a reload, and
// the next Vendor call starts the plugin afresh with the new block. The
// caller has stopped using the old client.
func (h *Host) StopVendor(name string) {
	key := sdk.KindVendor + "/" + name
	h.mu.Lock()
	k := h.kinds[key]
	delete(h.kinds, key)
	h.mu.Unlock()
	if k == nil {
		return
	}
	k.launchMu.Lock() // a start in flight finishes first, then is stopped
	inst := k.takeDown()
	k.launchMu.Unlock()
	if inst != nil {
		h.stop(inst, h.opts.StopTimeout)
	}
}

func (h *Host) kind(ctx context.Context, kind, name, pluginName string, cfg map[string]string) (*KindClient, error) {
	key := kind + "/" + name
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	k, ok := h.kinds[key]
	if !ok {
		cfgCopy := make(map[string]string, len(cfg))
		for a, v := range cfg {
			cfgCopy[a] = v
		}
		k = &KindClient{h: h, kind: kind, plugin: pluginName, cfg: cfgCopy,
			log: h.log.With(kind, name, "plugin", pluginName)}
		h.kinds[key] = k
	}
	h.mu.Unlock()
	if k.plugin != pluginName {
		return nil, fmt.Errorf("%s %q already runs plugin %q, not %q", kind, name, k.plugin, pluginName)
	}
	if _, err := k.get(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Info is what the plugin reported at its last start.
func (k *KindClient) Info() sdk.PluginInfo {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.info
}

// KindStatus is the health of one crawler or vendor plugin the host runs.
type KindStatus struct {
	Kind string // sdk.KindCrawler or sdk.KindVendor
	Name string // the vendor block's name; the plugin's for crawlers
	PluginStatus
}

// KindStatuses reports every crawler and vendor plugin the host has
// started (and not stopped), for the daemon's metrics.
func (h *Host) KindStatuses() []KindStatus {
	h.mu.Lock()
	ks := make(map[string]*KindClient, len(h.kinds))
	maps.Copy(ks, h.kinds)
	h.mu.Unlock()
	out := make([]KindStatus, 0, len(ks))
	for key, k := range ks {
		kind, name, _ := strings.Cut(key, "/")
		out = append(out, KindStatus{Kind: kind, Name: name, PluginStatus: k.Status()})
	}
	return out
}

// Status returns a snapshot of the plugin's health.
func (k *KindClient) Status() PluginStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := PluginStatus{Name: k.plugin, Plugin: k.plugin, Healthy: k.cur != nil && !k.cur.client.Exited(),
		Restarts: k.restarts, LastError: k.lastErr}
	if k.cur != nil {
		st.Path, st.PID = k.cur.path, k.cur.pid
	}
	return st
}

// PID is the plugin process's id, 0 when it is not running.
func (k *KindClient) PID() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur == nil {
		return 0
	}
	return k.cur.pid
}

func (k *KindClient) takeDown() *instance {
	k.mu.Lock()
	defer k.mu.Unlock()
	inst := k.cur
	k.cur = nil
	return inst
}

// get returns the running instance, starting one when there is none or
// the last one died.
func (k *KindClient) get(ctx context.Context) (*instance, error) {
	k.launchMu.Lock()
	defer k.launchMu.Unlock()
	k.mu.Lock()
	inst := k.cur
	if inst != nil && inst.client.Exited() {
		k.cur = nil
		msg := fmt.Sprintf("plugin process %d exited%s", inst.pid, stderrNote(inst.stderr.String()))
		k.lastErr = msg
		k.mu.Unlock()
		k.log.Error("plugin is down; starting it again", "err", msg)
		k.h.stop(inst, unhealthyStopTimeout)
		k.mu.Lock()
		inst = nil
	}
	if inst != nil {
		k.mu.Unlock()
		return inst, nil
	}
	if wait := time.Until(k.nextTry); wait > 0 {
		last := k.lastErr
		k.mu.Unlock()
		return nil, fmt.Errorf("%s plugin %q: %w: %s (next start in %s)", k.kind, k.plugin, ErrPluginUnavailable, last, wait.Round(time.Second))
	}
	started := k.info.Name != ""
	k.mu.Unlock()

	select {
	case <-k.h.closing:
		return nil, ErrClosed
	default:
	}
	inst, err := k.h.launchKind(ctx, k.kind, k.plugin, k.cfg, k.log)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.delay = min(max(2*k.delay, k.h.opts.BackoffMin), k.h.opts.BackoffMax)
		k.nextTry = time.Now().Add(k.delay)
		k.lastErr = err.Error()
		return nil, fmt.Errorf("start %s plugin %q: %w", k.kind, k.plugin, err)
	}
	select {
	case <-k.h.closing:
		go k.h.stop(inst, k.h.opts.StopTimeout)
		return nil, ErrClosed
	default:
	}
	k.cur, k.info, k.delay, k.nextTry = inst, inst.info, 0, time.Time{}
	if started {
		k.restarts++
	}
	k.log.Info("plugin started", "path", inst.path, "pid", inst.pid, "version", inst.info.PluginVersion)
	return inst, nil
}

// call runs fn against the plugin with a deadline; a plugin that died
// during the call is marked down and the error wraps ErrPluginUnavailable.
func (k *KindClient) call(ctx context.Context, op string, fn func(context.Context, any) error) error {
	inst, err := k.get(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.h.opts.CallTimeout)
		defer cancel()
	}
	err = fn(ctx, inst.raw)
	if err == nil {
		return nil
	}
	if connectionLost(ctx, err) || inst.client.Exited() {
		k.mu.Lock()
		if k.cur == inst {
			k.cur = nil
			k.lastErr = fmt.Sprintf("plugin process %d died during %s%s", inst.pid, op, stderrNote(inst.stderr.String()))
		}
		k.mu.Unlock()
		go k.h.stop(inst, unhealthyStopTimeout)
		return fmt.Errorf("%s plugin %q: %s: %w: the plugin process died: %w", k.kind, k.plugin, op, ErrPluginUnavailable, err)
	}
	return fmt.Errorf("%s plugin %q: %s: %w", k.kind, k.plugin, op, err)
}

// CrawlerClient is a supervised crawler plugin.
type CrawlerClient struct{ *KindClient }

// Run runs one task attempt; see sdk.Crawler.
func (c *CrawlerClient) Run(ctx context.Context, req sdk.RunRequest) (sdk.RunResult, error) {
	var out sdk.RunResult
	err := c.call(ctx, "run", func(ctx context.Context, raw any) (err error) {
		out, err = raw.(*sdk.GRPCCrawlerClient).Run(ctx, req)
		return err
	})
	return out, err
}

// VendorClient is a supervised vendor plugin.
type VendorClient struct{ *KindClient }

func (v *VendorClient) vendor(raw any) *sdk.GRPCVendorClient { return raw.(*sdk.GRPCVendorClient) }

// StartJob implements sdk.Vendor's StartJob.
func (v *VendorClient) StartJob(ctx context.Context, req sdk.StartJobRequest) (sdk.Job, error) {
	var out sdk.Job
	err := v.call(ctx, "start job", func(ctx context.Context, raw any) (err error) {
		out, err = v.vendor(raw).StartJob(ctx, req)
		return err
	})
	return out, err
}

// GetJob implements sdk.Vendor's GetJob.
func (v *VendorClient) GetJob(ctx context.Context, id string) (sdk.Job, error) {
	var out sdk.Job
	err := v.call(ctx, "get job", func(ctx context.Context, raw any) (err error) {
		out, err = v.vendor(raw).GetJob(ctx, id)
		return err
	})
	return out, err
}

// StopJob implements sdk.Vendor's StopJob.
func (v *VendorClient) StopJob(ctx context.Context, id string, kill bool) error {
	return v.call(ctx, "stop job", func(ctx context.Context, raw any) error {
		return v.vendor(raw).StopJob(ctx, id, kill)
	})
}

// ListJobs implements sdk.Vendor's ListJobs.
func (v *VendorClient) ListJobs(ctx context.Context, f sdk.JobFilter) ([]sdk.Job, error) {
	var out []sdk.Job
	err := v.call(ctx, "list jobs", func(ctx context.Context, raw any) (err error) {
		out, err = v.vendor(raw).ListJobs(ctx, f)
		return err
	})
	return out, err
}

// ListRobots implements sdk.Vendor's ListRobots.
func (v *VendorClient) ListRobots(ctx context.Context) ([]sdk.VendorRobot, error) {
	var out []sdk.VendorRobot
	err := v.call(ctx, "list robots", func(ctx context.Context, raw any) (err error) {
		out, err = v.vendor(raw).ListRobots(ctx)
		return err
	})
	return out, err
}
