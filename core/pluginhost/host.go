// Package pluginhost is the daemon's side of plugins: it finds plugin
// executables, starts each one as its own process over go-plugin (gRPC),
// checks that it is the plugin it claims to be, and supervises it: a plugin
// that crashes or stops answering is restarted with back-off, and calls
// made meanwhile fail fast instead of hanging or crashing the daemon.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	plugin "github.com/hashicorp/go-plugin"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Errors callers can test with errors.Is.
var (
	// ErrPluginNotFound: no executable for the plugin and no built-in.
	ErrPluginNotFound = errors.New("plugin not found")
	// ErrIncompatible: the executable is not a plugin this daemon can use
	// (protocol version, handshake, kind or name). Retrying will not help
	// until the executable is replaced.
	ErrIncompatible = errors.New("incompatible plugin")
	// ErrPluginUnavailable: the plugin is down (crashed, restarting, or
	// the host is closed). Calls fail fast with it.
	ErrPluginUnavailable = errors.New("plugin unavailable")
	// ErrClosed: the host was closed.
	ErrClosed = errors.New("plugin host closed")
)

// Options configure a Host. Zero durations take the defaults.
type Options struct {
	// Dir is the plugin directory, where rpacloud-<kind>-<name> is looked
	// for.
	Dir    string
	Logger *slog.Logger
	// SelfExe is the running rpacloud binary, re-executed for built-in
	// plugins; empty disables them.
	SelfExe string
	// Builtin reports which plugins SelfExe carries (the wiring passes
	// cmd/rpacloud/builtin.Has; the host never imports plugin code). It runs
	// them as `rpacloud plugin <kind> <name>` when the plugin directory
	// has no executable of that name. Nil: none.
	Builtin func(kind, name string) bool
	// StartTimeout bounds a plugin's start-up handshake. Default 20s.
	StartTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between restarts of a
	// plugin that died. Defaults 5s and 2m.
	BackoffMin, BackoffMax time.Duration
	// HealthInterval is how often each plugin is pinged. Default 5s.
	HealthInterval time.Duration
	// CallTimeout is the deadline of a call whose context has none.
	// Default 30s.
	CallTimeout time.Duration
	// StopTimeout is how long a plugin may take to exit after being asked
	// to (its clean-up may stop robots) before it is killed. Default 35s.
	StopTimeout time.Duration
	// SchemaTimeout bounds starting a plugin just to read its schema
	// (Schema): a plugin that hangs while describing itself must not hang
	// `rpacloud validate` or a start. Default 10s.
	SchemaTimeout time.Duration
	// BuiltinInfo is what a built-in plugin declares, read without
	// starting it (the wiring passes the table's Info). Nil: Schema
	// starts built-ins like any other plugin.
	BuiltinInfo func(ctx context.Context, kind, name string) (sdk.PluginInfo, error)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.StartTimeout, 20*time.Second)
	def(&o.BackoffMin, 5*time.Second)
	def(&o.BackoffMax, 2*time.Minute)
	def(&o.HealthInterval, 5*time.Second)
	def(&o.CallTimeout, 30*time.Second)
	def(&o.StopTimeout, 35*time.Second)
	def(&o.SchemaTimeout, defaultSchemaTimeout)
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = o.BackoffMin
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Dir != "" {
		if abs, err := filepath.Abs(o.Dir); err == nil {
			o.Dir = abs
		}
	}
}

// Host starts and supervises plugins.
type Host struct {
	opts Options
	log  *slog.Logger

	closing chan struct{}   // closed by Close
	ctx     context.Context // cancelled by Close, ends starts in flight
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	providers map[string]*ProviderClient
	kinds     map[string]*KindClient // crawler and vendor plugins, by kind/name
	schemas   map[schemaKey][]sdk.ConfigAttribute
}

// New returns a Host. Plugins start on demand.
func New(opts Options) *Host {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Host{
		ctx:       ctx,
		cancel:    cancel,
		opts:      opts,
		log:       opts.Logger.With("component", "pluginhost"),
		closing:   make(chan struct{}),
		providers: map[string]*ProviderClient{},
		kinds:     map[string]*KindClient{},
		schemas:   map[schemaKey][]sdk.ConfigAttribute{},
	}
}

// Dir is the plugin directory the host looks in (absolute), "" for none.
func (h *Host) Dir() string { return h.opts.Dir }

// Provider starts the provider plugin `pluginName` for the provider block
// `name`, configures it with cfg, and supervises it from then on. A second
// call for the same block returns the same client. Errors wrap
// ErrPluginNotFound, ErrIncompatible or *ConfigError when retrying cannot
// help.
func (h *Host) Provider(ctx context.Context, name, pluginName string, cfg map[string]string) (*ProviderClient, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if p, ok := h.providers[name]; ok {
		h.mu.Unlock()
		if p.plugin != pluginName {
			return nil, fmt.Errorf("provider %q already runs plugin %q, not %q", name, p.plugin, pluginName)
		}
		return p, nil
	}
	h.wg.Add(1) // Close waits for this start
	h.mu.Unlock()
	defer h.wg.Done()

	cfgCopy := make(map[string]string, len(cfg))
	for k, v := range cfg {
		cfgCopy[k] = v
	}
	p := &ProviderClient{
		h: h, name: name, plugin: pluginName, cfg: cfgCopy,
		log:  h.log.With("provider", name, "plugin", pluginName),
		kick: make(chan struct{}, 1),
	}
	inst, err := h.launch(ctx, p)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.stop(inst, h.opts.StopTimeout)
		return nil, ErrClosed
	}
	if other, ok := h.providers[name]; ok { // lost a race with another start
		h.mu.Unlock()
		h.stop(inst, h.opts.StopTimeout)
		return other, nil
	}
	p.setUp(inst)
	h.providers[name] = p
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		p.supervise()
	}()
	p.log.Info("plugin started", "path", inst.path, "pid", inst.pid, "version", inst.info.PluginVersion)
	return p, nil
}

// Close stops every plugin, gracefully first (a plugin may clean up, e.g.
// stop its robots), and returns when all processes and goroutines are
// gone. Calls made afterwards fail with ErrPluginUnavailable.
func (h *Host) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	close(h.closing)
	h.cancel()
	h.mu.Unlock()

	h.wg.Wait() // supervisors and starts in flight have returned

	h.mu.Lock()
	var insts []*instance
	for _, p := range h.providers {
		if inst := p.takeDown(); inst != nil {
			insts = append(insts, inst)
		}
	}
	for _, k := range h.kinds {
		if inst := k.takeDown(); inst != nil {
			insts = append(insts, inst)
		}
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() { h.stop(inst, h.opts.StopTimeout) })
	}
	wg.Wait()
}

// instance is one running plugin process.
type instance struct {
	client *plugin.Client
	prov   *sdk.GRPCProviderClient // provider kind
	raw    any                     // the dispensed client of any kind
	info   sdk.PluginInfo
	path   string
	pid    int
	stderr *tailBuffer
}

// find locates the executable of a plugin: rpacloud-<kind>-<name> in the
// plugin directory, else the built-in in the daemon's own binary.
func (h *Host) find(kind, name string) (path string, args []string, err error) {
	if !validName.MatchString(name) {
		return "", nil, fmt.Errorf("%w: %s plugin name %q: use lower-case letters, digits, '-' and '_'", ErrPluginNotFound, kind, name)
	}
	file := "rpacloud-" + kind + "-" + name
	if h.opts.Dir != "" {
		p := filepath.Join(h.opts.Dir, file)
		st, err := os.Stat(p)
		switch {
		case err == nil && (st.IsDir() || st.Mode()&0o111 == 0):
			return "", nil, fmt.Errorf("%w: %s plugin %q: %s is not an executable file", ErrPluginNotFound, kind, name, p)
		case err == nil:
			return p, nil, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", nil, fmt.Errorf("%w: %s plugin %q: %v", ErrPluginNotFound, kind, name, err)
		}
	}
	builtin := h.opts.Builtin != nil && h.opts.Builtin(kind, name)
	if builtin && h.opts.SelfExe != "" {
		return h.opts.SelfExe, []string{"plugin", kind, name}, nil
	}
	dir := h.opts.Dir
	if dir == "" {
		dir = "(none configured)"
	}
	msg := fmt.Sprintf("%s plugin %q: no executable %q in plugin directory %s", kind, name, file, dir)
	if builtin {
		msg += " and the built-in plugin is unavailable (the daemon's own executable is unknown)"
	}
	return "", nil, fmt.Errorf("%w: %s", ErrPluginNotFound, msg)
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// pluginEnv is the whole environment of a plugin: no variable of the
// daemon (database DSNs, Vault tokens, cloud keys) leaks into third-party
// code. Plugins get their configuration through Configure.
func pluginEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// launch starts one process of p's plugin, checks it is the plugin named,
// and configures it.
func (h *Host) launch(ctx context.Context, p *ProviderClient) (*instance, error) {
	inst, err := h.launchKind(ctx, sdk.KindProvider, p.plugin, p.cfg, p.log)
	if err != nil {
		var cfgErr *ConfigError
		if errors.As(err, &cfgErr) {
			cfgErr.Provider = p.name
			return nil, fmt.Errorf("start provider %q: %w", p.name, cfgErr)
		}
		return nil, fmt.Errorf("start provider %q: %w", p.name, err)
	}
	prov, ok := inst.raw.(*sdk.GRPCProviderClient)
	if !ok {
		h.stop(inst, unhealthyStopTimeout)
		return nil, fmt.Errorf("start provider %q: plugin %q dispensed %T", p.name, p.plugin, inst.raw)
	}
	inst.prov = prov
	return inst, nil
}

// infoConfigurer is the base service every kind's client has.
type infoConfigurer interface {
	Info(ctx context.Context) (sdk.PluginInfo, error)
	Configure(ctx context.Context, cfg map[string]string) ([]sdk.ConfigDiagnostic, error)
}

// pluginSets is the daemon side of each kind's versioned plugin sets.
func pluginSets(kind string) (map[int]plugin.PluginSet, int) {
	switch kind {
	case sdk.KindCrawler:
		return sdk.CrawlerPluginSets(nil), sdk.CrawlerProtocolVersion
	case sdk.KindVendor:
		return sdk.VendorPluginSets(nil), sdk.VendorProtocolVersion
	}
	return sdk.ProviderPluginSets(nil), sdk.ProviderProtocolVersion
}

// launchKind starts one plugin process of any kind, checks it is the
// plugin named, and configures it.
func (h *Host) launchKind(ctx context.Context, kind, pluginName string, cfg map[string]string, log *slog.Logger) (*instance, error) {
	inst, err := h.start(ctx, kind, pluginName, log, h.opts.StartTimeout)
	if err != nil {
		return nil, err
	}
	callCtx, cancel := context.WithTimeout(ctx, h.opts.CallTimeout)
	defer cancel()
	defer context.AfterFunc(h.ctx, cancel)() // Close does not wait for a slow Configure
	diags, err := inst.raw.(infoConfigurer).Configure(callCtx, cfg)
	if err != nil {
		inst.client.Kill()
		return nil, fmt.Errorf("plugin %q (%s): configure: %w", pluginName, inst.path, err)
	}
	if len(diags) > 0 {
		inst.client.Kill()
		return nil, &ConfigError{Kind: kind, Plugin: pluginName, Diagnostics: diags}
	}
	return inst, nil
}

// start starts one plugin process of any kind and checks, by its Info,
// that it is the plugin named. startTimeout bounds the go-plugin
// handshake; ctx (and CallTimeout) the Info call.
func (h *Host) start(ctx context.Context, kind, pluginName string, log *slog.Logger, startTimeout time.Duration) (*instance, error) {
	path, args, err := h.find(kind, pluginName)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = pluginEnv()
	setProcAttrs(cmd)
	tail := newTailBuffer(4096)
	sets, _ := pluginSets(kind)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sets,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     startTimeout,
		SkipHostEnv:      true,
		Managed:          false,
		Logger:           newHCLogAdapter(log),
		Stderr:           tail,
	})
	fail := func(err error) (*instance, error) {
		client.Kill() // also waits until stderr is read to the end
		return nil, err
	}
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, handshakeError(kind, pluginName, path, err, tail.String())
	}
	raw, err := rpc.Dispense(kind)
	if err != nil {
		return fail(fmt.Errorf("plugin %q (%s): dispense: %w", pluginName, path, err))
	}
	base, ok := raw.(infoConfigurer)
	if !ok {
		return fail(fmt.Errorf("plugin %q (%s): dispensed %T", pluginName, path, raw))
	}
	inst := &instance{client: client, raw: raw, path: path, stderr: tail}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}

	callCtx, cancel := context.WithTimeout(ctx, h.opts.CallTimeout)
	defer cancel()
	defer context.AfterFunc(h.ctx, cancel)() // Close does not wait for a slow Info
	info, err := base.Info(callCtx)
	if err != nil {
		client.Kill() // first, so that the note has what a crashing plugin wrote
		return nil, fmt.Errorf("plugin %q (%s): info: %w%s", pluginName, path, err, stderrNote(tail.String()))
	}
	if info.Kind != kind || info.Name != pluginName {
		return fail(fmt.Errorf("%w: plugin %q (%s) reports itself as %.40s plugin %.80q; expected %s plugin %q",
			ErrIncompatible, pluginName, path, info.Kind, info.Name, kind, pluginName))
	}
	inst.info = info
	return inst, nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// handshakeError explains why go-plugin could not connect, in the
// operator's terms: which plugin, which file, and what to do.
func handshakeError(kind, name, path string, err error, stderr string) error {
	_, supported := pluginSets(kind)
	msg := err.Error()
	switch {
	case strings.Contains(stderr, "This binary is a plugin"):
		return fmt.Errorf("%w: plugin %q (%s) refused rpacloud's handshake cookie %s: it is a plugin for another program, or built with another SDK",
			ErrIncompatible, name, path, sdk.MagicCookieKey)
	case strings.Contains(msg, "incompatible API version"):
		offered := "an unknown version"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			offered = "version " + m[1]
		}
		return fmt.Errorf("%w: plugin %q (%s) speaks %s protocol %s; this rpacloud supports %s protocol version %d: install a plugin release built for it",
			ErrIncompatible, name, path, kind, offered, kind, supported)
	case strings.Contains(msg, "Unrecognized remote plugin message"), strings.Contains(msg, "incompatible core API version"),
		strings.Contains(msg, "unsupported plugin protocol"), strings.Contains(msg, "error parsing"):
		return fmt.Errorf("%w: plugin %q (%s) did not complete the go-plugin handshake (is it an rpacloud plugin built with plugins/sdk?): %s%s",
			ErrIncompatible, name, path, firstLine(msg), stderrNote(stderr))
	}
	return fmt.Errorf("plugin %q (%s): %v%s", name, path, err, stderrNote(stderr))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// stderrNote quotes the last lines the plugin wrote to stderr outside its
// structured log (which is in the daemon's log already): a panic, a
// message printed before the SDK took over.
func stderrNote(stderr string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, `{"@`) {
			lines = append(lines, l)
		}
	}
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	note := strings.TrimSpace(strings.Join(lines, " | "))
	if note == "" {
		return ""
	}
	return "; plugin stderr: " + note
}

// stop ends a plugin process: a graceful stop first (the plugin's clean-up
// runs), a kill after grace. It returns when the process is gone and
// go-plugin's goroutines have ended.
func (h *Host) stop(inst *instance, grace time.Duration) {
	rpc, err := inst.client.Client()
	if err == nil {
		closed := make(chan struct{})
		go func() {
			// Asks the plugin to stop; blocks while a plugin that stopped
			// answering does not exit, hence the kill below.
			_ = rpc.Close()
			close(closed)
		}()
		deadline := time.NewTimer(grace)
		tick := time.NewTicker(20 * time.Millisecond)
	wait:
		for !inst.client.Exited() {
			select {
			case <-deadline.C:
				h.log.Warn("plugin did not exit in time, killing it", "path", inst.path, "pid", inst.pid, "timeout", grace)
				killPID(inst.pid)
				break wait
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
		<-closed
	}
	inst.client.Kill()
}

func killPID(pid int) {
	if pid <= 0 {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// ConfigError is a configuration the plugin refused.
type ConfigError struct {
	Kind             string // "" means provider
	Provider, Plugin string // Provider: the block name, when known
	Diagnostics      []sdk.ConfigDiagnostic
}

func (e *ConfigError) Error() string {
	parts := make([]string, 0, len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		parts = append(parts, d.String())
	}
	if e.Provider == "" {
		kind := e.Kind
		if kind == "" {
			kind = sdk.KindProvider
		}
		return fmt.Sprintf("%s plugin %q: invalid configuration: %s", kind, e.Plugin, strings.Join(parts, "; "))
	}
	return fmt.Sprintf("provider %q (plugin %q): invalid configuration: %s", e.Provider, e.Plugin, strings.Join(parts, "; "))
}

// tailBuffer keeps the last bytes a plugin wrote to stderr, to explain a
// plugin that died at start-up.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
