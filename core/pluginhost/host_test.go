package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// fixture is the fake provider plugin, built once; each test installs it
// under the names it needs.
var fixture string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		panic(err)
	}
	fixture = filepath.Join(dir, "fakeprovider")
	code := 0
	if out, err := exec.Command("go", "build", "-o", fixture, "./testdata/fakeprovider").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fixture plugin: %v\n%s", err, out)
		code = 1
	} else {
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// install puts the fixture into a fresh plugin directory as
// rpacloud-provider-<name> for each name.
func install(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Link(fixture, filepath.Join(dir, "rpacloud-provider-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testOptions(t *testing.T, dir string) Options {
	return Options{
		Dir:            dir,
		Logger:         testLogger(t, nil),
		StartTimeout:   10 * time.Second,
		BackoffMin:     100 * time.Millisecond,
		BackoffMax:     time.Second,
		HealthInterval: 100 * time.Millisecond,
		StopTimeout:    5 * time.Second,
		Builtin:        func(kind, name string) bool { return kind == sdk.KindProvider && name == "local" },
	}
}

func newHost(t *testing.T, opts Options) *Host {
	h := New(opts)
	t.Cleanup(h.Close)
	return h
}

func start(t *testing.T, h *Host, name, pluginName string) *ProviderClient {
	t.Helper()
	p, err := h.Provider(context.Background(), name, pluginName, nil)
	if err != nil {
		t.Fatalf("start %s: %v", pluginName, err)
	}
	return p
}

func TestHealthyPlugin(t *testing.T) {
	dir := install(t, "healthy")
	h := newHost(t, testOptions(t, dir))
	p := start(t, h, "main", "healthy")
	ctx := context.Background()
	in, err := p.Create(ctx, sdk.CreateRequest{IdempotencyKey: "k1", Pool: "a", RobotName: "r1", RobotToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Create(ctx, sdk.CreateRequest{IdempotencyKey: "k1", Pool: "a", RobotName: "r1", RobotToken: "t"})
	if err != nil || again.ID != in.ID {
		t.Fatalf("idempotent create: %v %v", again.ID, err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != in.ID {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := p.Destroy(ctx, []string{in.ID, "unknown"}); err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if !st.Healthy || st.PID <= 0 || st.Restarts != 0 || st.Name != "main" || st.Plugin != "healthy" ||
		st.Path != filepath.Join(dir, "rpacloud-provider-healthy") || st.Since.IsZero() {
		t.Errorf("status = %+v", st)
	}
	if p.Info().Name != "healthy" {
		t.Errorf("info = %+v", p.Info())
	}
	if again, err := h.Provider(ctx, "main", "healthy", nil); err != nil || again != p {
		t.Errorf("second Provider for one block: %p %v, want the first client", again, err)
	}
	if _, err := h.Provider(ctx, "main", "other", nil); err == nil {
		t.Error("Provider for a started block with another plugin: no error")
	}
}

// Credentials in the daemon's environment must not reach plugins.
func TestPluginEnvironmentIsMinimal(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("RPACLOUD_VAULT_TOKEN", "s.leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "leak")
	h := newHost(t, testOptions(t, install(t, "healthy")))
	start(t, h, "main", "healthy")
	data, err := os.ReadFile(filepath.Join(tmp, "fakeprovider-healthy.env"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"PATH", "HOME", "TMPDIR", sdk.MagicCookieKey, "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_CLIENT_CERT"}
	var keys []string
	for _, kv := range strings.Split(string(data), "\n") {
		k, _, _ := strings.Cut(kv, "=")
		if k != "" && !strings.HasPrefix(kv, "-----") && !strings.HasPrefix(kv, "MII") && strings.ToUpper(k) == k && !strings.ContainsAny(k, "+/ ") {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			t.Errorf("plugin environment has %s; allowed: %v", k, allowed)
		}
	}
	if !slices.Contains(keys, "TMPDIR") || !slices.Contains(keys, "PLUGIN_CLIENT_CERT") {
		t.Errorf("plugin environment %v lacks TMPDIR or the mTLS certificate", keys)
	}
}

func TestCrashedPluginIsRestarted(t *testing.T) {
	h := newHost(t, testOptions(t, install(t, "crashy")))
	p := start(t, h, "main", "crashy")
	pid := p.Status().PID
	_, err := p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k", RobotName: "crash"})
	if !errors.Is(err, ErrPluginUnavailable) || !strings.Contains(err.Error(), `"crashy"`) {
		t.Fatalf("create that crashed the plugin: err = %v, want ErrPluginUnavailable naming the plugin", err)
	}
	sdktest.Eventually(t, 10*time.Second, "condition", func() bool { st := p.Status(); return st.Healthy && st.Restarts == 1 })
	st := p.Status()
	if st.PID == pid || st.LastError == "" {
		t.Errorf("after restart: %+v (old pid %d)", st, pid)
	}
	if _, err := p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k2", RobotName: "fine"}); err != nil {
		t.Fatalf("create after restart: %v", err)
	}
	if alive(pid) {
		t.Errorf("crashed plugin process %d still exists", pid)
	}
}

func TestKilledPluginIsRestarted(t *testing.T) {
	h := newHost(t, testOptions(t, install(t, "healthy")))
	p := start(t, h, "main", "healthy")
	if err := syscall.Kill(p.Status().PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sdktest.Eventually(t, 10*time.Second, "condition", func() bool { st := p.Status(); return st.Healthy && st.Restarts == 1 })
	if _, err := p.List(context.Background()); err != nil {
		t.Fatalf("list after restart: %v", err)
	}
}

// While the plugin is down, calls fail at once instead of waiting for
// their deadline.
func TestCallsFailFastWhileDown(t *testing.T) {
	opts := testOptions(t, install(t, "crashy"))
	opts.BackoffMin = 5 * time.Second // stays down for the test
	opts.BackoffMax = 5 * time.Second
	h := newHost(t, opts)
	p := start(t, h, "pool-provider", "crashy")
	_, _ = p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k", RobotName: "crash"})
	sdktest.Eventually(t, 5*time.Second, "condition", func() bool { return !p.Healthy() })
	begin := time.Now()
	_, err := p.List(context.Background())
	if !errors.Is(err, ErrPluginUnavailable) || !strings.Contains(err.Error(), `"pool-provider"`) || !strings.Contains(err.Error(), `"crashy"`) {
		t.Fatalf("list while down: %v", err)
	}
	if d := time.Since(begin); d > 100*time.Millisecond {
		t.Errorf("list while down took %v", d)
	}
}

func TestHangingCallHitsDeadline(t *testing.T) {
	opts := testOptions(t, install(t, "hang"))
	opts.CallTimeout = 500 * time.Millisecond
	h := newHost(t, opts)
	p := start(t, h, "main", "hang")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := p.Create(ctx, sdk.CreateRequest{IdempotencyKey: "k", RobotName: "hang"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging create: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("hanging create returned after %v", d)
	}
	// Without a deadline of its own, a call gets CallTimeout.
	_, err = p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k2", RobotName: "hang"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging create without deadline: err = %v, want context.DeadlineExceeded", err)
	}
	if _, err := p.List(context.Background()); err != nil {
		t.Fatalf("list after a hung call: %v", err)
	}
	if st := p.Status(); !st.Healthy || st.Restarts != 0 {
		t.Errorf("status after hung calls: %+v", st)
	}
}

func TestIncompatiblePluginsAreRefused(t *testing.T) {
	cases := []struct {
		plugin string
		want   []string
	}{
		{"v2", []string{"protocol version 2", "version 1"}},
		{"garbage", []string{"handshake", "not a go-plugin handshake line"}},
		{"cookie", []string{sdk.MagicCookieKey}},
		{"wrongname", []string{`"someone-else"`, "expected provider plugin"}},
		{"wrongkind", []string{"vendor", "expected provider plugin"}},
	}
	dir := install(t, "v2", "garbage", "cookie", "wrongname", "wrongkind")
	h := newHost(t, testOptions(t, dir))
	for _, tc := range cases {
		t.Run(tc.plugin, func(t *testing.T) {
			begin := time.Now()
			_, err := h.Provider(context.Background(), "main-"+tc.plugin, tc.plugin, nil)
			if !errors.Is(err, ErrIncompatible) {
				t.Fatalf("err = %v, want ErrIncompatible", err)
			}
			msg := err.Error()
			for _, w := range append(tc.want, `"`+tc.plugin+`"`, filepath.Join(dir, "rpacloud-provider-"+tc.plugin)) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("refusal took %v", d)
			}
		})
	}
	if pids := processesUnder(dir); len(pids) > 0 {
		t.Errorf("refused plugins left processes behind: %v", pids)
	}
}

func TestPluginNotFound(t *testing.T) {
	dir := install(t)
	h := newHost(t, testOptions(t, dir))
	_, err := h.Provider(context.Background(), "main", "nosuch", nil)
	if !errors.Is(err, ErrPluginNotFound) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), `"rpacloud-provider-nosuch"`) {
		t.Fatalf("err = %v, want ErrPluginNotFound naming %s and the file", err, dir)
	}
	if _, err := h.Provider(context.Background(), "main", "../../bin/sh", nil); !errors.Is(err, ErrPluginNotFound) {
		t.Fatalf("path in plugin name: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rpacloud-provider-noexec"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Provider(context.Background(), "main", "noexec", nil); !errors.Is(err, ErrPluginNotFound) || !strings.Contains(err.Error(), "not an executable") {
		t.Fatalf("non-executable plugin: err = %v", err)
	}
	// The built-in local provider needs the daemon's own binary.
	if _, err := h.Provider(context.Background(), "main", "local", nil); !errors.Is(err, ErrPluginNotFound) || !strings.Contains(err.Error(), "built-in") {
		t.Fatalf("built-in without SelfExe: err = %v", err)
	}
}

func TestBuiltinRunsSelfExe(t *testing.T) {
	self := filepath.Join(t.TempDir(), "rpacloud")
	if err := os.Link(fixture, self); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, install(t))
	opts.SelfExe = self
	h := newHost(t, opts)
	p := start(t, h, "main", "local")
	if st := p.Status(); st.Path != self || !st.Healthy {
		t.Fatalf("status = %+v", st)
	}
	if _, err := p.List(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	h := newHost(t, testOptions(t, install(t, "healthy")))
	_, err := h.Provider(context.Background(), "main", "healthy", map[string]string{"max_instances": "many"})
	var cfgErr *ConfigError
	if !errors.As(err, &cfgErr) || len(cfgErr.Diagnostics) != 1 || cfgErr.Diagnostics[0].Attribute != "max_instances" {
		t.Fatalf("err = %v, want a ConfigError about max_instances", err)
	}
	if !strings.Contains(err.Error(), `provider "main"`) {
		t.Errorf("error %q does not name the provider block", err)
	}
}

// A plugin replaced by an incompatible build while it was down is refused
// on restart, and retried at BackoffMax, not in a tight loop.
func TestIncompatibleRestartBacksOff(t *testing.T) {
	dir := install(t, "crashy")
	var failures atomic.Int32
	opts := testOptions(t, dir)
	opts.Logger = testLogger(t, func(r slog.Record) {
		if r.Message == "provider plugin restart failed" {
			failures.Add(1)
		}
	})
	opts.BackoffMin = 50 * time.Millisecond
	opts.BackoffMax = 2 * time.Second
	h := newHost(t, opts)
	p := start(t, h, "main", "crashy")
	if err := os.WriteFile(filepath.Join(dir, "rpacloud-provider-crashy.mode"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _ = p.Create(context.Background(), sdk.CreateRequest{IdempotencyKey: "k", RobotName: "crash"})
	sdktest.Eventually(t, 5*time.Second, "condition", func() bool { return failures.Load() >= 1 })
	time.Sleep(time.Second)
	if n := failures.Load(); n != 1 {
		t.Errorf("%d restart attempts within a second of an incompatible one, want 1", n)
	}
	st := p.Status()
	if st.Healthy || !strings.Contains(st.LastError, "protocol version 2") {
		t.Errorf("status = %+v", st)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	h := New(testOptions(t, install(t, "healthy", "hang")))
	a := start(t, h, "a", "healthy")
	b := start(t, h, "b", "hang")
	// A call in flight must not keep Close waiting.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = b.Create(ctx, sdk.CreateRequest{IdempotencyKey: "k", RobotName: "hang"}) })
	time.Sleep(100 * time.Millisecond)
	pids := []int{a.Status().PID, b.Status().PID}
	begin := time.Now()
	h.Close()
	h.Close()
	if d := time.Since(begin); d > 4*time.Second {
		t.Errorf("Close took %v", d)
	}
	wg.Wait()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("plugin process %d survived Close", pid)
		}
	}
	if _, err := a.List(context.Background()); !errors.Is(err, ErrPluginUnavailable) {
		t.Errorf("call after Close: %v", err)
	}
	if a.Healthy() {
		t.Error("healthy after Close")
	}
	if _, err := h.Provider(context.Background(), "c", "healthy", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Provider after Close: %v", err)
	}
}

// helpers

func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// processesUnder lists live processes started from an executable in dir.
func processesUnder(dir string) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscan(d.Name(), &pid); err != nil {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmd), dir+"/") && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// testLogger writes the host's log into the test log (and to hook), and
// drops lines that come after the test ended.
func testLogger(t *testing.T, hook func(slog.Record)) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	var out io.Writer = w
	return slog.New(&hookHandler{Handler: slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}), hook: hook})
}

type hookHandler struct {
	slog.Handler
	hook func(slog.Record)
}

func (h *hookHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.hook != nil {
		h.hook(r)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *hookHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &hookHandler{Handler: h.Handler.WithAttrs(as), hook: h.hook}
}

func (h *hookHandler) WithGroup(g string) slog.Handler {
	return &hookHandler{Handler: h.Handler.WithGroup(g), hook: h.hook}
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// The real local provider, as the daemon runs it.
func TestLocalProviderPlugin(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "rpacloud-provider-local")
	if out, err := exec.Command("go", "build", "-o", bin, "../../plugins/provider/local/cmd/rpacloud-provider-local").CombinedOutput(); err != nil {
		t.Fatalf("build local provider: %v\n%s", err, out)
	}
	h := newHost(t, testOptions(t, dir))
	p, err := h.Provider(context.Background(), "local", "local", map[string]string{
		"robot_command": "/bin/sh", "state_dir": filepath.Join(dir, "state"), "stop_robots_on_exit": "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := p.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("list: %v %v", list, err)
	}
	if st := p.Status(); !st.Healthy || st.Path != bin {
		t.Fatalf("status: %+v", st)
	}
	_, err = h.Provider(context.Background(), "other", "local", map[string]string{"state_dir": "relative"})
	var cfgErr *ConfigError
	if !errors.As(err, &cfgErr) {
		t.Fatalf("bad config: %v", err)
	}
}

// Schema starts a plugin just to read what it declares, stops it, and
// reads it again only when the executable changed; a plugin that
// crashes, hangs or declares something out of bounds while describing
// itself is an error naming it, within the deadline, and leaves no
// process behind.
func TestSchema(t *testing.T) {
	dir := install(t, "healthy", "infocrash", "infohang", "infohuge", "infobadname")
	opts := testOptions(t, dir)
	opts.SchemaTimeout = 2 * time.Second
	h := newHost(t, opts)
	ctx := context.Background()

	attrs, err := h.Schema(ctx, sdk.KindProvider, "healthy")
	if err != nil || len(attrs) != 2 || attrs[0].Name != "region" || !attrs[1].Sensitive {
		t.Fatalf("healthy: %v, %v", attrs, err)
	}
	if pids := processesUnder(dir); len(pids) != 0 {
		t.Errorf("plugin processes left after reading a schema: %v", pids)
	}
	// Cached: the same answer without a start (the mode file would make
	// a new start crash).
	exe := filepath.Join(dir, "rpacloud-provider-healthy")
	if err := os.WriteFile(exe+".mode", []byte("infocrash"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Schema(ctx, sdk.KindProvider, "healthy"); err != nil {
		t.Fatalf("cached: %v", err)
	}
	// A replaced executable (another modification time) is read again.
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(exe, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Schema(ctx, sdk.KindProvider, "healthy"); err == nil {
		t.Fatal("a replaced executable was not read again")
	}

	for _, tc := range []struct{ name, want string }{
		{"infocrash", "crashed while describing itself"},
		{"infohang", "did not describe its configuration within 2s"},
		{"infohuge", "declares 1000 configuration attributes, over the limit of 128"},
		{"infobadname", "is not a lower-case identifier"},
		{"missing", `no executable "rpacloud-provider-missing"`},
	} {
		began := time.Now()
		_, err := h.Schema(ctx, sdk.KindProvider, tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: %v; want it to say %q", tc.name, err, tc.want)
		}
		if d := time.Since(began); d > 8*time.Second {
			t.Errorf("%s: took %s", tc.name, d)
		}
	}
	if _, err := h.Schema(ctx, sdk.KindProvider, "missing"); !errors.Is(err, ErrPluginNotFound) {
		t.Errorf("missing: %v does not wrap ErrPluginNotFound", err)
	}
	sdktest.Eventually(t, 5*time.Second, "plugin processes gone after failed schema reads", func() bool { return len(processesUnder(dir)) == 0 })

	// A built-in is read from BuiltinInfo, without starting anything.
	opts.SelfExe = fixture
	opts.BuiltinInfo = func(_ context.Context, kind, name string) (sdk.PluginInfo, error) {
		return sdk.PluginInfo{Kind: kind, Name: name, ConfigSchema: []sdk.ConfigAttribute{{Name: "state_dir", Type: sdk.TypeString}}}, nil
	}
	hb := newHost(t, opts)
	if attrs, err := hb.Schema(ctx, sdk.KindProvider, "local"); err != nil || len(attrs) != 1 || attrs[0].Name != "state_dir" {
		t.Errorf("built-in: %v, %v", attrs, err)
	}
}
