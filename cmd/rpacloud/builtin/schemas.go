package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Info is what built-in plugin kind/name declares, read from the table
// without starting it: what the plugin host's Options.BuiltinInfo takes.
func Info(ctx context.Context, kind, name string) (sdk.PluginInfo, error) {
	p, ok := Lookup(kind, name)
	if !ok {
		return sdk.PluginInfo{}, fmt.Errorf("no built-in %s plugin %q", kind, name)
	}
	return p.Info(ctx)
}

// Schemas is the configuration loader's view of plugins
// (config.PluginSchemas): a plugin exists when the plugin directory has
// its executable or the binary carries it, and its schema is what it
// declares in its Info: read from this table for a built-in, from the
// executable (started just for that, with a deadline) otherwise. It is
// what `rpacloud validate` and the daemon's start load configuration
// with; Close stops what it started.
type Schemas struct {
	SelfExe string // the rpacloud binary, which serves the built-ins
	// DataDir, when set, replaces the configuration's data_dir, under
	// which the plugin directory is when plugin_dir is not set (`rpacloud
	// dev` runs in a data directory of its own).
	DataDir string
	Logger  *slog.Logger
	// Host, when set, answers every look-up, whatever plugin directory
	// the configuration names: it is a running daemon's host, whose
	// directory a reload cannot move (plugin_dir needs a restart), so
	// files sent to the daemon can never make it start executables from
	// a directory of their choosing. Its schema cache serves the reload;
	// Close leaves it running.
	Host *pluginhost.Host

	mu    sync.Mutex
	hosts map[string]*pluginhost.Host // by plugin directory
}

var _ config.PluginSchemas = (*Schemas)(nil)

// PluginSchema implements config.PluginSchemas.
func (s *Schemas) PluginSchema(ctx context.Context, srv config.Server, kind, name string) ([]config.PluginAttribute, error) {
	if s.DataDir != "" {
		srv.DataDir = s.DataDir
	}
	dir := srv.PluginDirectory()
	attrs, err := s.host(dir).Schema(ctx, kind, name)
	if errors.Is(err, pluginhost.ErrPluginNotFound) {
		where := strings.TrimPrefix(err.Error(), pluginhost.ErrPluginNotFound.Error()+": ")
		return nil, fmt.Errorf("%w: %s; built-in %s plugins: %s", config.ErrPluginNotFound, where, kind, strings.Join(Names(kind), ", "))
	}
	if err != nil {
		return nil, err
	}
	return ConfigAttributes(attrs), nil
}

// ConfigAttributes converts what a plugin declares to the loader's form.
func ConfigAttributes(attrs []sdk.ConfigAttribute) []config.PluginAttribute {
	out := make([]config.PluginAttribute, len(attrs))
	for i, a := range attrs {
		out[i] = config.PluginAttribute{Name: a.Name, Type: string(a.Type), Required: a.Required, Sensitive: a.Sensitive}
	}
	return out
}

func (s *Schemas) host(dir string) *pluginhost.Host {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if s.Host != nil {
		return s.Host
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hosts == nil {
		s.hosts = map[string]*pluginhost.Host{}
	}
	h := s.hosts[dir]
	if h == nil {
		log := s.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		h = pluginhost.New(pluginhost.Options{Dir: dir, SelfExe: s.SelfExe, Builtin: Has, BuiltinInfo: Info, Logger: log})
		s.hosts[dir] = h
	}
	return h
}

// Close stops every plugin host Schemas started.
func (s *Schemas) Close() {
	s.mu.Lock()
	hosts := s.hosts
	s.hosts = nil
	s.mu.Unlock()
	for _, h := range hosts {
		h.Close()
	}
}
