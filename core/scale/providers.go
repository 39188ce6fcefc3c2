package scale

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/pluginhost"
)

// Providers starts each provider block's plugin on first use and retries
// a plugin that could not be started at all with back-off. Once started, the
// plugin host supervises it (restarts after crashes). The fleet loop gets
// its providers here, and the API, health and metrics read their state.
type Providers struct {
	host   *pluginhost.Host
	blocks map[string]config.Provider
	opts   ProvidersOptions
	log    *slog.Logger

	mu       sync.Mutex
	clients  map[string]*pluginhost.ProviderClient
	nextTry  map[string]time.Time
	failures map[string]int
}

// ProvidersOptions are what the daemon knows better than a provider
// plugin.
type ProvidersOptions struct {
	// DataDir is the daemon's data directory; the local provider keeps its
	// state below it.
	DataDir string
	// SelfExe is the rpacloud binary, which the local provider runs as
	// robots.
	SelfExe string
	// PluginDir is the daemon's plugin directory, where the local
	// provider's robots find third-party crawler and vendor plugins too.
	PluginDir string
	// StopRobotsOnExit: local robots stop with the daemon (embedded mode).
	StopRobotsOnExit bool
	// Resolve reads the secrets a provider block references
	// ("vault:PATH#FIELD"); nil when the daemon has no Vault.
	Resolve func(context.Context, config.VaultRef) (string, error)
	Logger  *slog.Logger
}

// NewProviders serves the configuration's provider blocks from the plugin
// host.
func NewProviders(h *pluginhost.Host, cfg *config.Config, o ProvidersOptions) *Providers {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Providers{
		host: h, opts: o, log: o.Logger, blocks: map[string]config.Provider{},
		clients: map[string]*pluginhost.ProviderClient{}, nextTry: map[string]time.Time{}, failures: map[string]int{},
	}
	for _, p := range cfg.Providers {
		s.blocks[p.Name] = p
	}
	return s
}

// Update serves the provider blocks of a reloaded configuration: a new
// block starts on first use. A block that left the configuration stays
// served until the daemon restarts, so that the fleet can still release
// the robots of the pools that drain; a changed block needs a restart
// (config.Diff says so), so the running plugin is never reconfigured here.
// It returns the names of the blocks it added, for Forget.
func (s *Providers) Update(cfg *config.Config) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var added []string
	for _, p := range cfg.Providers {
		if _, ok := s.blocks[p.Name]; !ok {
			s.blocks[p.Name] = p
			added = append(added, p.Name)
		}
	}
	return added
}

// Forget undoes Update for the named blocks whose plugin has not started,
// when the reload that added them failed: nothing refers to them.
func (s *Providers) Forget(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if _, started := s.clients[n]; !started {
			delete(s.blocks, n)
			delete(s.nextTry, n)
			delete(s.failures, n)
		}
	}
}

// Stale names the provider blocks of cfg that this Providers serves with
// another plugin or other attributes: a block removed by an earlier reload
// (its plugin still runs for the draining pools) and now declared again
// differently. Update would keep the old one, so such a change waits for a
// restart.
func (s *Providers) Stale(cfg *config.Config) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range cfg.Providers {
		if old, ok := s.blocks[p.Name]; ok && (old.Plugin != p.Plugin || !maps.Equal(old.Config, p.Config)) {
			out = append(out, p.Name)
		}
	}
	return out
}

// pluginConfig fills in the defaults the daemon knows better than the
// plugin: where the local provider keeps its state and which binary runs
// the robots.
func (s *Providers) pluginConfig(p config.Provider) map[string]string {
	cfg := make(map[string]string, len(p.Config)+3)
	for k, v := range p.Config {
		cfg[k] = v
	}
	if p.Plugin == "local" {
		if cfg["state_dir"] == "" {
			cfg["state_dir"] = s.opts.DataDir + "/local-provider"
		}
		if cfg["robot_command"] == "" && s.opts.SelfExe != "" {
			cfg["robot_command"] = s.opts.SelfExe
		}
		if cfg["plugin_dir"] == "" && s.opts.PluginDir != "" {
			cfg["plugin_dir"] = s.opts.PluginDir
		}
		if _, ok := cfg["stop_robots_on_exit"]; !ok {
			cfg["stop_robots_on_exit"] = strconv.FormatBool(s.opts.StopRobotsOnExit)
		}
	}
	return cfg
}

// Get returns the started plugin of a provider block, starting it on first
// use; false while it cannot be started (the failure is logged and retried
// with back-off) or when no block has that name.
func (s *Providers) Get(name string) (Provider, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[name]; ok {
		return c, true
	}
	block, ok := s.blocks[name]
	if !ok {
		return nil, false
	}
	if time.Now().Before(s.nextTry[name]) {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := s.resolveSecrets(ctx, name, s.pluginConfig(block))
	var c *pluginhost.ProviderClient
	if err == nil {
		c, err = s.host.Provider(ctx, name, block.Plugin, cfg)
	}
	if err != nil {
		s.failures[name]++
		wait := min(5*time.Second<<min(s.failures[name]-1, 5), 2*time.Minute)
		s.nextTry[name] = time.Now().Add(wait)
		s.log.Error("provider plugin did not start", "provider", name, "plugin", block.Plugin, "err", err, "retry_in", wait)
		return nil, false
	}
	s.clients[name] = c
	delete(s.failures, name)
	return c, true
}

// Healthy reports whether the plugin behind a provider block is up.
func (s *Providers) Healthy(name string) bool {
	s.mu.Lock()
	c, ok := s.clients[name]
	s.mu.Unlock()
	return ok && c.Healthy()
}

// Statuses reports every provider block, started or not.
func (s *Providers) Statuses() map[string]pluginhost.PluginStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]pluginhost.PluginStatus{}
	for name, b := range s.blocks {
		if c, ok := s.clients[name]; ok {
			out[name] = c.Status()
		} else {
			out[name] = pluginhost.PluginStatus{Name: name, Plugin: b.Plugin, LastError: "not started"}
		}
	}
	return out
}

// resolveSecrets replaces the block's Vault references by their values just
// before the plugin is configured; the values live only in the plugin
// process and this call's memory, and errors name the reference, never a
// value.
func (s *Providers) resolveSecrets(ctx context.Context, name string, cfg map[string]string) (map[string]string, error) {
	for k, v := range cfg {
		ref, err := config.ParseVaultRef(v)
		if err != nil {
			continue // not a reference
		}
		if s.opts.Resolve == nil {
			return nil, fmt.Errorf("provider %q: %s = %q needs Vault, and the daemon has no vault block", name, k, v)
		}
		val, err := s.opts.Resolve(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %s: %w", name, k, err)
		}
		cfg[k] = val
	}
	return cfg, nil
}
