package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/event"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const reloadBase = `
server {
  listen   = "127.0.0.1:8080"
  data_dir = "/var/lib/rpacloud"
}
provider "local" {
  plugin = "local"
}
pool "a" {
  provider = "local"
  max      = 2
}
pool "c" {
  provider = "local"
  max      = 1
}
process "x" {
  pool         = "a"
  builtin      = "echo"
  max_duration = "10m"
}
process "y" {
  pool    = "c"
  builtin = "noop"
}
`

// reloadNext adds pool b (and its process), changes process x and removes
// pool c (and its process).
var reloadNext = strings.NewReplacer(`max_duration = "10m"`, `max_duration = "20m"
  retries      = 5`, `pool "c" {
  provider = "local"
  max      = 1
}`, `pool "b" {
  provider = "local"
  max      = 1
}`, `process "y" {
  pool    = "c"`, `process "w" {
  pool    = "b"`).Replace(reloadBase)

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"main.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return cfg
}

// reloadDaemon is the part of a daemon a reload touches, on SQLite.
func reloadDaemon(t *testing.T, running, loaded *config.Config) *Daemon {
	t.Helper()
	db := storetest.SQLite(t)
	if err := store.SyncConfig(context.Background(), db.Client, running); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{opts: Options{Config: running, Loaded: loaded}, log: slog.New(slog.DiscardHandler), db: db, bus: events.New(),
		started: time.Now(), providers: scale.NewProviders(nil, running, scale.ProvidersOptions{})}
	d.initReloads()
	return d
}

func files(src string) map[string][]byte { return map[string][]byte{"main.hcl": []byte(src)} }

// TestReloadApplies: a pool added, a process changed and a pool removed
// reach the database in one go, the services read the new configuration,
// and a config.applied event says who applied what.
func TestReloadApplies(t *testing.T) {
	ctx := context.Background()
	d := reloadDaemon(t, load(t, reloadBase), nil)
	before := d.live().Current()

	dry, err := d.Reload(ctx, "test", files(reloadNext), true)
	if err != nil || dry.Applied || d.live().Current() != before {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	out, err := d.Reload(ctx, "token admin", files(reloadNext), false)
	if err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	want := "+ pool \"b\"\n- pool \"c\" (drains: 0 pending or running tasks finish on its robots, which are then released)\n" +
		"+ process \"w\"\n~ process \"x\"\n    max_duration: 10m0s → 20m0s\n    retries: 3 → 5\n- process \"y\"\nPlan: 2 to add, 1 to change, 2 to remove.\n"
	if got := out.Plan.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	for name, active := range map[string]bool{"a": true, "b": true, "c": false} {
		p, err := d.db.Pool.Query().Where(pool.Name(name)).Only(sys)
		if err != nil || p.Active != active {
			t.Errorf("pool %s: %+v %v, want active %v", name, p, err, active)
		}
	}
	x, err := d.db.Process.Query().Where(process.Name("x")).Only(sys)
	if err != nil || x.MaxDurationSeconds != 1200 || x.Retries != 5 {
		t.Errorf("process x: %+v %v", x, err)
	}
	if y, err := d.db.Process.Query().Where(process.Name("y")).Only(sys); err != nil || y.Active {
		t.Errorf("process y: %+v %v, want inactive", y, err)
	}
	cur := d.live().Current()
	if len(cur.Pools) != 2 || cur.Processes[0].MaxDuration != 20*time.Minute || !reflect.DeepEqual(cur.Server, before.Server) {
		t.Errorf("running configuration: %+v", cur)
	}
	rev, err := store.LatestRevision(ctx, d.db.Client)
	// The revision has the files without the server block (each daemon's
	// own; its dsn may carry a password).
	if err != nil || rev == nil || rev.AppliedBy != "token admin" || strings.Contains(rev.Files["main.hcl"], "server") ||
		!strings.Contains(rev.Files["main.hcl"], `pool "b" {`) || rev.Hash != store.RevisionHash(rev.Files) {
		t.Fatalf("revision: %+v %v", rev, err)
	}
	ev, err := d.db.Event.Query().Where(event.Type(string(events.ConfigApplied))).Only(sys)
	if want := fmt.Sprintf("configuration applied by token admin (revision %d): 2 to add, 1 to change, 2 to remove", rev.ID); err != nil || ev.Message != want {
		t.Errorf("event: %+v %v, want %q", ev, err, want)
	}
	// The same files again change nothing.
	again, err := d.Reload(ctx, "test", files(reloadNext), false)
	if err != nil || again.Applied || !again.Plan.Empty() {
		t.Errorf("second reload: %+v %v", again, err)
	}
}

// TestReloadRefusals: an invalid configuration and one that needs a
// restart are refused whole, with the diagnostics or the reason, and
// nothing changes: not the running configuration, not the database.
func TestReloadRefusals(t *testing.T) {
	ctx := context.Background()
	d := reloadDaemon(t, load(t, reloadBase), nil)
	before := d.live().Current()
	invalid := strings.Replace(reloadNext, `max      = 2`, `max      = "two"`, 1)
	out, err := d.Reload(ctx, "test", files(invalid), false)
	if !errors.Is(err, ErrInvalidConfig) || out == nil || !out.Diagnostics.HasErrors() {
		t.Fatalf("invalid: %+v %v", out, err)
	}
	if s := out.Diagnostics.Error(); !strings.Contains(s, "main.hcl:") {
		t.Errorf("diagnostics not located: %s", s)
	}
	restart := strings.Replace(reloadNext, `127.0.0.1:8080`, `0.0.0.0:8080`, 1)
	out, err = d.Reload(ctx, "test", files(restart), false)
	if !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), "server: the daemon's listener") {
		t.Fatalf("restart: %+v %v", out, err)
	}
	if out.Plan.Empty() || out.Applied {
		t.Errorf("restart plan: %+v", out)
	}
	for _, bad := range []map[string][]byte{
		{"../etc/x.hcl": []byte(reloadBase)},
		{"main.txt": []byte(reloadBase)},
		{"main.hcl": make([]byte, config.MaxFileBytes+1)},
		{},
	} {
		if _, err := d.Reload(ctx, "test", bad, false); err == nil {
			t.Errorf("files %v accepted", len(bad))
		}
	}
	if d.live().Current() != before {
		t.Error("the running configuration changed")
	}
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	if n, _ := d.db.Pool.Query().Where(pool.Name("b")).Count(sys); n != 0 {
		t.Error("a refused configuration reached the database")
	}
	if n, _ := d.db.Event.Query().Where(event.Type(string(events.ConfigApplied))).Count(sys); n != 0 {
		t.Error("a refused reload recorded config.applied")
	}
}

// TestReloadOneAtATime: a reload while another applies is refused, saying
// since when; a dry run still plans.
func TestReloadOneAtATime(t *testing.T) {
	ctx := context.Background()
	d := reloadDaemon(t, load(t, reloadBase), nil)
	d.rl.mu.Lock() // a reload in progress
	d.rl.since = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	_, err := d.Reload(ctx, "test", files(reloadNext), false)
	if !errors.Is(err, ErrReloadInProgress) || !strings.Contains(err.Error(), "since 2026-12-06T12:00:00Z") {
		t.Fatalf("reload during a reload: %v", err)
	}
	if out, err := d.Reload(ctx, "test", files(reloadNext), true); err != nil || out.Plan.Empty() {
		t.Fatalf("dry run during a reload: %+v %v", out, err)
	}
	d.rl.mu.Unlock()
	if out, err := d.Reload(ctx, "test", files(reloadNext), false); err != nil || !out.Applied {
		t.Fatalf("after: %+v %v", out, err)
	}
}

// TestReloadDevOverrides: dev mode runs with an overridden server block
// (and a dev Vault); plans compare with the files as loaded, so the
// override is no change, and the applied configuration keeps running
// with the overridden server and Vault.
func TestReloadDevOverrides(t *testing.T) {
	ctx := context.Background()
	loaded := load(t, reloadBase)
	running := *loaded
	running.Server.Listen, running.Server.DataDir = "127.0.0.1:39999", t.TempDir()
	running.Vault = &config.Vault{Address: "http://127.0.0.1:8200"}
	d := reloadDaemon(t, &running, loaded)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(reloadNext), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Reload(ctx, "SIGHUP", nil, false); !errors.Is(err, ErrNoFiles) {
		t.Fatalf("no paths: %v", err)
	}
	d.opts.Paths = []string{dir}
	out, err := d.Reload(ctx, "SIGHUP", nil, false)
	if err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	for _, c := range out.Plan.Changes {
		if c.Kind == "server" || c.Kind == "vault" {
			t.Errorf("the override shows as a change: %+v", c)
		}
	}
	cur := d.live().Current()
	if !reflect.DeepEqual(cur.Server, running.Server) || cur.Vault != running.Vault {
		t.Errorf("server %+v vault %+v, want the overridden ones", cur.Server, cur.Vault)
	}
}

// sighup writes src as the daemon's own file and reloads it, as SIGHUP
// does.
func sighup(t *testing.T, d *Daemon, src string) (*config.Outcome, error) {
	t.Helper()
	if len(d.opts.Paths) == 0 {
		d.opts.Paths = []string{t.TempDir()}
	}
	if err := os.WriteFile(filepath.Join(d.opts.Paths[0], "main.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return d.Reload(context.Background(), "SIGHUP", nil, false)
}

// TestReloadProviderBackDifferent: a provider removed by a reload keeps
// serving its draining pools until a restart, so declaring it again with
// other attributes needs a restart; declared again as it was, it is live.
// Providers come back through the daemon's own files (TestReloadHostFiles).
func TestReloadProviderBackDifferent(t *testing.T) {
	ctx := context.Background()
	withS3 := strings.Replace(reloadBase, "process \"x\"", `provider "spare" {
  plugin = "local"
}
pool "s" {
  provider = "spare"
  max      = 1
}
process "z" {
  pool    = "s"
  builtin = "noop"
}
process "x"`, 1)
	d := reloadDaemon(t, load(t, withS3), nil)
	if out, err := d.Reload(ctx, "test", files(reloadBase), false); err != nil || !out.Applied {
		t.Fatalf("remove: %+v %v", out, err)
	}
	changed := strings.Replace(withS3, `provider "spare" {
  plugin = "local"`, `provider "spare" {
  plugin    = "local"
  state_dir = "/tmp/elsewhere"`, 1)
	if _, err := sighup(t, d, changed); !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), `provider "spare": a provider of this name was removed`) {
		t.Fatalf("back with other attributes: %v", err)
	}
	if out, err := sighup(t, d, withS3); err != nil || !out.Applied {
		t.Fatalf("back as it was: %+v %v", out, err)
	}
}

// TestReloadHostFiles: files sent over the API may not add a provider (a
// change needs a restart anyway) (its plugin runs executables on the daemon host, e.g. the local
// provider's robot_command): refused whole, even as a dry run, with the
// plan saying so; removing one is fine; the daemon's own files (SIGHUP)
// may add one.
func TestReloadHostFiles(t *testing.T) {
	ctx := context.Background()
	d := reloadDaemon(t, load(t, reloadBase), nil)
	before := d.live().Current()
	evil := reloadBase + `provider "evil" {
  plugin        = "local"
  robot_command = "/bin/sh"
}
pool "e" {
  provider = "evil"
  max      = 1
}
`
	for _, dry := range []bool{true, false} {
		out, err := d.Reload(ctx, "token admin", files(evil), dry)
		if !errors.Is(err, ErrHostFiles) || !strings.Contains(err.Error(), `provider "evil": `+config.HostFilesProviders) {
			t.Fatalf("dry %v: add a provider through the API: %v", dry, err)
		}
		if txt := out.Plan.String(); !strings.Contains(txt, `+ provider "evil" (needs the daemon's own files: providers start executables`) ||
			!strings.Contains(txt, "1 change(s) need the daemon's own files") {
			t.Errorf("plan does not say so:\n%s", txt)
		}
	}
	changed := strings.Replace(reloadBase, `plugin = "local"`, `plugin        = "local"
  robot_command = "/bin/sh"`, 1)
	// A changed provider needs a restart whoever sends it, and is refused
	// with that reason alone.
	if _, err := d.Reload(ctx, "token admin", files(changed), false); !errors.Is(err, ErrNeedsRestart) || errors.Is(err, ErrHostFiles) {
		t.Fatalf("change a provider through the API: %v", err)
	}
	if d.live().Current() != before {
		t.Fatal("a refused configuration runs")
	}
	if _, ok := d.providers.Statuses()["evil"]; ok {
		t.Error("a refused provider is served")
	}
	// The daemon's own files add it.
	if out, err := sighup(t, d, evil); err != nil || !out.Applied {
		t.Fatalf("SIGHUP: %+v %v", out, err)
	}
	if _, ok := d.providers.Statuses()["evil"]; !ok {
		t.Error("a provider added by SIGHUP is not served")
	}
	// Removing it through the API starts nothing: allowed.
	if out, err := d.Reload(ctx, "token admin", files(reloadBase), false); err != nil || !out.Applied {
		t.Fatalf("remove through the API: %+v %v", out, err)
	}
}

// TestReloadSighupWaits: a SIGHUP while another reload applies is applied
// after it, not dropped.
func TestReloadSighupWaits(t *testing.T) {
	d := reloadDaemon(t, load(t, reloadBase), nil)
	d.opts.Paths = []string{t.TempDir()}
	if err := os.WriteFile(filepath.Join(d.opts.Paths[0], "main.hcl"), []byte(reloadNext), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	d.opts.Reload = sig
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.followReloads(ctx) }()
	defer func() { cancel(); <-done }()
	d.rl.mu.Lock() // an API reload in progress
	sig <- os.Interrupt
	time.Sleep(1500 * time.Millisecond) // the signal meets the reload in progress at least once
	if len(d.live().Current().Pools) != 2 || d.live().Current().Pools[1].Name != "c" {
		t.Fatal("applied during another reload")
	}
	d.rl.mu.Unlock()
	sdktest.Eventually(t, 10*time.Second, "the SIGHUP applied after the reload in progress", func() bool {
		ps := d.live().Current().Pools
		return len(ps) == 2 && ps[1].Name == "b"
	})
}

// TestReloadRetiredSpecs: a crawler process removed with its pool keeps
// its spec for the robots of that pool, so that the tasks it had accepted
// still run while the pool drains; declared again, the new block serves.
func TestReloadRetiredSpecs(t *testing.T) {
	ctx := context.Background()
	crawl := func(src string) string {
		return strings.Replace(src, `builtin = "noop"`, `crawler = "http"
  package = "status.yaml"`, 1)
	}
	d := reloadDaemon(t, load(t, crawl(reloadBase)), nil)
	if _, _, ok := d.retiredSpec("y"); ok {
		t.Fatal("a running process is retired")
	}
	if out, err := d.Reload(ctx, "test", files(reloadNext), false); err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	spec, pool, ok := d.retiredSpec("y")
	if !ok || pool != "c" || spec.Kind != "crawler" || spec.Package != "status.yaml" {
		t.Fatalf("retired spec of y: %+v %q %v", spec, pool, ok)
	}
	if out, err := d.Reload(ctx, "test", files(crawl(reloadBase)), false); err != nil || !out.Applied {
		t.Fatalf("reload back: %+v %v", out, err)
	}
	if _, _, ok := d.retiredSpec("y"); ok {
		t.Error("a process declared again is still served from the retired specs")
	}
	// Removed again; once its pool drained, it is forgotten.
	if out, err := d.Reload(ctx, "test", files(reloadNext), false); err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	d.drained("c")
	if _, _, ok := d.retiredSpec("y"); ok || len(d.rl.retired) != 0 {
		t.Error("a drained pool's process is still served")
	}
}

// TestReloadRetiredOnlyDraining: a process removed while its pool stays
// is not served to that pool's robots (they run the running
// configuration), nor kept; a pool that comes back drops its retired
// processes.
func TestReloadRetiredOnlyDraining(t *testing.T) {
	ctx := context.Background()
	crawl := func(src string) string {
		return strings.Replace(src, `builtin = "noop"`, `crawler = "http"
  package = "status.yaml"`, 1)
	}
	d := reloadDaemon(t, load(t, crawl(reloadBase)), nil)
	noY := strings.Replace(reloadBase, `process "y" {
  pool    = "c"
  builtin = "noop"
}`, "", 1)
	if out, err := d.Reload(ctx, "test", files(noY), false); err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	if _, _, ok := d.retiredSpec("y"); ok || len(d.rl.retired) != 0 {
		t.Fatal("a process removed from an active pool is served or kept")
	}
	// Pool c leaves with y, then comes back without it.
	if out, err := d.Reload(ctx, "test", files(crawl(reloadBase)), false); err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	if out, err := d.Reload(ctx, "test", files(reloadNext), false); err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	if _, _, ok := d.retiredSpec("y"); !ok {
		t.Fatal("a draining pool's process is not served")
	}
	back := strings.Replace(reloadNext, `pool "b" {`, `pool "c" {
  provider = "local"
  max      = 1
}
pool "b" {`, 1)
	if out, err := d.Reload(ctx, "test", files(back), false); err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	if _, _, ok := d.retiredSpec("y"); ok || len(d.rl.retired) != 0 {
		t.Error("a pool that came back still gets a removed process's spec")
	}
}

// TestReloadTunesMonitor: the monitor's thresholds change live; its
// webhook needs a restart.
func TestReloadTunesMonitor(t *testing.T) {
	ctx := context.Background()
	d := reloadDaemon(t, load(t, reloadBase), nil)
	d.mon = &monitoring{mon: monitor.New(d.db.Client, monitor.Options{})}
	out, err := d.Reload(ctx, "test", files(reloadBase+"monitor {\n  stuck_after = \"45m\"\n}\n"), false)
	if err != nil || !out.Applied {
		t.Fatalf("reload: %+v %v", out, err)
	}
	if got := d.mon.mon.Tuning().Thresholds.StuckAfter; got != 45*time.Minute {
		t.Fatalf("stuck_after in use: %v, want 45m", got)
	}
	hook := reloadBase + "monitor {\n  stuck_after = \"45m\"\n  webhook {\n    url = \"https://hooks.example/x\"\n  }\n}\n"
	if _, err := d.Reload(ctx, "test", files(hook), false); !errors.Is(err, ErrNeedsRestart) || !strings.Contains(err.Error(), "webhook") {
		t.Fatalf("webhook: %v", err)
	}
}

// TestReloadSighupRefusedEvent: systemctl reload reports success even when
// the daemon refuses the files; the refusal is logged and recorded as a
// config.refused event with the reason.
func TestReloadSighupRefusedEvent(t *testing.T) {
	d := reloadDaemon(t, load(t, reloadBase), nil)
	d.opts.Paths = []string{t.TempDir()}
	bad := strings.Replace(reloadBase, `max      = 2`, `max      = "two"`, 1)
	if err := os.WriteFile(filepath.Join(d.opts.Paths[0], "main.hcl"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	d.opts.Reload = sig
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.followReloads(ctx) }()
	defer func() { cancel(); <-done }()
	sig <- os.Interrupt
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	sdktest.Eventually(t, 10*time.Second, "a config.refused event", func() bool {
		ev, err := d.db.Event.Query().Where(event.Type(string(events.ConfigRefused))).Only(sys)
		return err == nil && strings.Contains(ev.Message, "reload by SIGHUP refused") && strings.Contains(ev.Message, "invalid")
	})
}

// TestReloadPlanChanged: an apply given the hash of the plan its operator
// saw is refused when the plan now differs (another reload came between);
// with the current plan's hash it applies.
func TestReloadPlanChanged(t *testing.T) {
	ctx := context.Background()
	d := reloadDaemon(t, load(t, reloadBase), nil)
	shown, err := d.Reload(ctx, "test", files(reloadNext), true)
	if err != nil {
		t.Fatal(err)
	}
	// Meanwhile someone else applies part of it.
	between := strings.Replace(reloadBase, `max_duration = "10m"`, `max_duration = "20m"`, 1)
	if out, err := d.Reload(ctx, "other", files(between), false); err != nil || !out.Applied {
		t.Fatalf("between: %+v %v", out, err)
	}
	before := d.live().Current()
	if _, err := d.ReloadPlanned(ctx, "test", files(reloadNext), false, shown.Plan.Hash()); !errors.Is(err, ErrPlanChanged) {
		t.Fatalf("apply of a stale plan: %v", err)
	}
	if d.live().Current() != before {
		t.Fatal("a stale plan was applied")
	}
	now, _ := d.Reload(ctx, "test", files(reloadNext), true)
	if out, err := d.ReloadPlanned(ctx, "test", files(reloadNext), false, now.Plan.Hash()); err != nil || !out.Applied {
		t.Fatalf("apply of the current plan: %+v %v", out, err)
	}
}

// A revision is stored in the database, so it leaves out everything that
// may hold a secret the loader lets through: the server block (a dsn's
// password is only a warning), the monitor's webhook (a URL with a token)
// and comments (a commented-out block is never checked); what remains
// loads as the same configuration otherwise.
func TestRevisionFilesHoldNoSecret(t *testing.T) {
	src := `# old: server { database { dsn = "postgres://u:hunter2@db/x" } }
server {
  listen = "127.0.0.1:8080" // the dsn below carries a password
  database {
    driver = "postgres"
    dsn    = "postgres://rpacloud:hunter2@db/rpacloud"
  }
}
/* token: hunter2 */
monitor {
  heartbeat_timeout = "3m"
  webhook {
    url = "https://hooks.example/services/hunter2"
  }
}
` + strings.TrimPrefix(reloadBase, "\nserver {\n  listen   = \"127.0.0.1:8080\"\n  data_dir = \"/var/lib/rpacloud\"\n}\n")
	cfg, diags, files := config.LoadSources(map[string][]byte{"main.hcl": []byte(src)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	out, err := revisionFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	got := out["main.hcl"]
	for _, bad := range []string{"hunter2", "server", "webhook", "#", "//", "/*"} {
		if strings.Contains(got, bad) {
			t.Errorf("revision holds %q:\n%s", bad, got)
		}
	}
	again, diags, _ := config.LoadSources(map[string][]byte{"main.hcl": []byte(got)})
	if diags.HasErrors() {
		t.Fatalf("the revision does not load: %v\n%s", diags, got)
	}
	again.Server, again.Monitor.Webhook = cfg.Server, cfg.Monitor.Webhook
	if p := config.Diff(cfg, again); len(p.Changes) != 0 {
		t.Errorf("the revision is another configuration:\n%s", p)
	}
}

// TestReloadSighupAudited: a SIGHUP that applies and one that is refused
// are both in the audit trail, actor signal:SIGHUP, target the revision,
// the files by name and size, their content (here a sentinel in a
// comment) nowhere.
func TestReloadSighupAudited(t *testing.T) {
	d := reloadDaemon(t, load(t, reloadBase), nil)
	d.opts.Paths = []string{t.TempDir()}
	const sentinel = "SENTINEL-sighup-4d1c"
	write := func(src string) {
		if err := os.WriteFile(filepath.Join(d.opts.Paths[0], "main.hcl"), []byte(src+"# "+sentinel+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	d.opts.Reload = sig
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.followReloads(ctx) }()
	defer func() { cancel(); <-done }()
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	entries := func(n int) []*ent.AuditEntry {
		var rows []*ent.AuditEntry
		sdktest.Eventually(t, 10*time.Second, fmt.Sprintf("%d audit entries", n), func() bool {
			rows = d.db.AuditEntry.Query().Order(ent.Asc(auditentry.FieldID)).AllX(sys)
			return len(rows) >= n
		})
		return rows
	}
	write(reloadNext)
	sig <- os.Interrupt
	ok := entries(1)[0]
	rev := d.rl.lastRev.Load()
	if ok.Actor != "signal:SIGHUP" || ok.Action != "reloadConfig" || ok.Outcome != auditentry.OutcomeOk ||
		ok.Target != fmt.Sprintf("revision %d", rev) || !strings.Contains(ok.Arguments, `"name":"main.hcl"`) ||
		!strings.Contains(ok.Arguments, "bytes]") {
		t.Errorf("applied: %v", ok)
	}
	write(strings.Replace(reloadNext, `max      = 2`, `max      = "two"`, 1))
	sig <- os.Interrupt
	bad := entries(2)[1]
	if bad.Actor != "signal:SIGHUP" || bad.Outcome != auditentry.OutcomeError || bad.ErrorCode != "CONFIG_NOT_APPLIED" {
		t.Errorf("refused: %v", bad)
	}
	for _, r := range []*ent.AuditEntry{ok, bad} {
		if strings.Contains(r.String(), sentinel) {
			t.Errorf("the file's content is in the audit trail: %v", r)
		}
	}
}
