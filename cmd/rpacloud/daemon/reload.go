package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
)

// Errors of a reload; the running configuration stays in every case.
var (
	// ErrInvalidConfig: the new configuration has errors (in the result's
	// diagnostics).
	ErrInvalidConfig = errors.New("the configuration is invalid; nothing was applied")
	// ErrNeedsRestart: the plan changes something a running daemon cannot.
	ErrNeedsRestart = errors.New("the configuration changes what needs a restart; nothing was applied")
	// ErrHostFiles: files sent through the API add or change what only
	// the daemon's own files may (config.BlockChange.HostFiles).
	ErrHostFiles = errors.New("the configuration changes what only the daemon's own files may; nothing was applied")
	// ErrPlanChanged: the plan differs from the one the caller was shown.
	ErrPlanChanged = errors.New("the running configuration changed since the plan; nothing was applied; plan again")
	// ErrReloadInProgress: another reload is being applied.
	ErrReloadInProgress = errors.New("a reload is in progress")
	// ErrNoFiles: the daemon runs the built-in configuration and has no
	// files to re-read.
	ErrNoFiles = errors.New("the daemon was started from the built-in configuration and has no files to re-read; apply files with `rpacloud config apply --config DIR`")
)

// Reload limits of configurations sent through the API: the request body
// limit (server.limits) bounds the whole, these bound its parts.
const (
	MaxReloadFiles = 64
)

// reloads is the daemon's live configuration: the effective configuration
// the services read, the same as read from its files (which plans compare
// with, so that dev's overridden server block is not a change), and the
// one-reload-at-a-time guard.
type reloads struct {
	mu      sync.Mutex // held while a reload applies
	sinceMu sync.Mutex
	since   time.Time // when the reload in progress began
	loaded  *config.Holder
	// vendorsChanged wakes the vendor pollers after a reload.
	vendorsChanged chan struct{}
	// own holds the ids of the config.applied events this daemon
	// recorded, so that it follows only the other daemons' (followOthers);
	// held while recording, as the bus hands the event on before Record
	// returns.
	ownMu sync.Mutex
	own   map[int]bool
	// lastRev is the configuration revision this daemon last recorded or
	// followed: a follower applies the latest only when it is another.
	lastRev atomic.Int64
	// retired are the specs of crawler and vendor processes that reloads
	// removed, served to the robots of their draining pools until a
	// restart (or until the process is declared again).
	retiredMu sync.Mutex
	retired   map[string]retiredSpec
	// withRetired is the running configuration plus the retired
	// processes, which the credential bindings read, so that those tasks
	// still get the credentials their HCL declared.
	withRetired *config.Holder
}

type retiredSpec struct {
	spec *robotwire.ProcessSpec
	pool string
	proc config.Process
}

// bindingsConfig is where the credential bindings read the processes'
// declared credentials: the running ones and the retired ones.
func (d *Daemon) bindingsConfig() config.Live {
	if d.rl != nil {
		return d.rl.withRetired
	}
	return d.live()
}

// retiredSpec is robotapi.Service.Retired: a removed process's spec is
// served only while its pool is out of the running configuration (it
// drains); robotapi then checks the robot is of that pool.
func (d *Daemon) retiredSpec(name string) (*robotwire.ProcessSpec, string, bool) {
	if d.rl == nil {
		return nil, "", false
	}
	d.rl.retiredMu.Lock()
	defer d.rl.retiredMu.Unlock()
	r, ok := d.rl.retired[name]
	if !ok || r.spec == nil || poolDeclared(d.cfg.Current(), r.pool) {
		return nil, "", false
	}
	return r.spec, r.pool, true
}

func poolDeclared(c *config.Config, name string) bool {
	for _, p := range c.Pools {
		if p.Name == name {
			return true
		}
	}
	return false
}

// retire keeps the specs and declared credentials of the processes of old
// that next removes while their pool drains (it left the configuration
// too), and forgets those of processes declared again and of pools that
// came back: their robots are the running configuration's again.
func (d *Daemon) retire(old, next *config.Config) {
	d.rl.retiredMu.Lock()
	defer d.rl.retiredMu.Unlock()
	defer d.storeWithRetired(next)
	keep := map[string]bool{}
	for _, p := range next.Processes {
		keep[p.Name] = true
		delete(d.rl.retired, p.Name)
	}
	for name, r := range d.rl.retired {
		if poolDeclared(next, r.pool) {
			delete(d.rl.retired, name)
		}
	}
	for _, p := range old.Processes {
		if keep[p.Name] || poolDeclared(next, p.Pool) {
			continue
		}
		spec, pool, _ := robotapi.BuildSpec(old, p.Name)
		d.rl.retired[p.Name] = retiredSpec{spec: spec, pool: pool, proc: p}
	}
}

// storeWithRetired publishes cfg plus the retired processes to the
// credential bindings; retiredMu is held.
func (d *Daemon) storeWithRetired(cfg *config.Config) {
	merged := *cfg
	merged.Processes = append([]config.Process(nil), cfg.Processes...)
	for _, r := range d.rl.retired {
		merged.Processes = append(merged.Processes, r.proc)
	}
	d.rl.withRetired.Store(&merged)
}

// drained forgets the retired processes of a pool whose robots are all
// released: no robot of it is left to ask for their specs.
func (d *Daemon) drained(pool string) {
	if d.rl == nil {
		return
	}
	d.rl.retiredMu.Lock()
	defer d.rl.retiredMu.Unlock()
	n := len(d.rl.retired)
	for name, r := range d.rl.retired {
		if r.pool == pool {
			delete(d.rl.retired, name)
		}
	}
	if len(d.rl.retired) != n {
		d.storeWithRetired(d.cfg.Current())
	}
}

// pluginSchemas checks the plugins a reloaded configuration names as the
// start did, through the daemon's own plugin host and its schema cache, so
// a misspelt attribute or a missing plugin refuses the reload whole. The
// host is pinned to the daemon's plugin directory: the files a reload is
// sent may name another plugin_dir, and must not make the daemon start
// what lies there (a changed server block is refused anyway).
func (d *Daemon) pluginSchemas() *builtin.Schemas {
	return &builtin.Schemas{SelfExe: d.opts.SelfExe, Host: d.host, Logger: d.log}
}

// live returns where the services read the configuration.
func (d *Daemon) live() config.Live {
	if d.cfg != nil {
		return d.cfg
	}
	return d.opts.Config
}

func (d *Daemon) initReloads() {
	d.cfg = config.NewHolder(d.opts.Config)
	loaded := d.opts.Loaded
	if loaded == nil {
		loaded = d.opts.Config
	}
	d.rl = &reloads{loaded: config.NewHolder(loaded), vendorsChanged: make(chan struct{}, 1), own: map[int]bool{}, retired: map[string]retiredSpec{},
		withRetired: config.NewHolder(d.opts.Config)}
}

// Reload applies a new configuration without a restart: srcs are the HCL
// files by name (the API), or nil to re-read the files the daemon started
// from (SIGHUP). The configuration is loaded and validated whole, planned
// against the running one (config.Diff), and refused whole when it is
// invalid or changes what needs a restart. Otherwise its customers, pools
// and processes are synced into the database in one transaction, the
// services switch to it, and a config.applied event records who applied
// what. With dryRun nothing is applied. One reload applies at a time; a
// second one meanwhile is refused with ErrReloadInProgress.
func (d *Daemon) Reload(ctx context.Context, by string, srcs map[string][]byte, dryRun bool) (*config.Outcome, error) {
	return d.ReloadPlanned(ctx, by, srcs, dryRun, "")
}

// reloadHow says where a reload's files come from.
type reloadHow struct {
	// trusted: the files are the daemon's own (SIGHUP) or a revision one
	// of the daemons applied from its own files or checked as API files:
	// they may change what only the host's files may (providers).
	trusted bool
	// follow is the revision a follower applies: no new revision is
	// recorded, the event names this one.
	follow *ent.ConfigRevision
}

// ReloadPlanned is Reload that, given planHash (config.Plan.Hash of the
// plan its caller showed), refuses with ErrPlanChanged when the plan now
// differs: the running configuration changed in between (another apply, a
// SIGHUP), and what would apply is not what the operator agreed to.
func (d *Daemon) ReloadPlanned(ctx context.Context, by string, srcs map[string][]byte, dryRun bool, planHash string) (*config.Outcome, error) {
	return d.reload(ctx, by, srcs, dryRun, planHash, reloadHow{trusted: srcs == nil})
}

func (d *Daemon) reload(ctx context.Context, by string, srcs map[string][]byte, dryRun bool, planHash string, how reloadHow) (*config.Outcome, error) {
	if !dryRun {
		if !d.rl.mu.TryLock() {
			d.rl.sinceMu.Lock()
			since := d.rl.since
			d.rl.sinceMu.Unlock()
			return nil, fmt.Errorf("%w since %s", ErrReloadInProgress, since.UTC().Format(time.RFC3339))
		}
		defer d.rl.mu.Unlock()
		d.rl.sinceMu.Lock()
		d.rl.since = time.Now()
		d.rl.sinceMu.Unlock()
	}
	var (
		next  *config.Config
		diags hcl.Diagnostics
		files map[string]*hcl.File
	)
	schemas := d.pluginSchemas() // Close would leave the daemon's host running: nothing to close
	switch {
	case srcs != nil:
		if len(srcs) > MaxReloadFiles {
			return nil, fmt.Errorf("%d configuration files, over the limit of %d", len(srcs), MaxReloadFiles)
		}
		for name, b := range srcs {
			if len(b) > config.MaxFileBytes {
				return nil, fmt.Errorf("configuration file %s: %d bytes, over the limit of %d", name, len(b), config.MaxFileBytes)
			}
			if !strings.HasSuffix(name, ".hcl") || strings.ContainsAny(name, "/\\") {
				return nil, fmt.Errorf("configuration file %q: a name ending in .hcl, without a directory, is required", name)
			}
		}
		if len(srcs) == 0 {
			return nil, errors.New("no configuration files given")
		}
		if how.follow != nil && len(d.opts.Paths) > 0 {
			// Another daemon's own files: the files their blocks name
			// (calendars, trigger inputs) are read from this daemon's
			// configuration directory, which holds the same files.
			next, diags, files = config.LoadSourcesAt(ctx, schemas, srcs, configDir(d.opts.Paths[0]))
		} else {
			next, diags, files = config.LoadSourcesWith(ctx, schemas, srcs)
		}
	case len(d.opts.Paths) > 0:
		next, diags, files = config.LoadWith(ctx, schemas, d.opts.Paths...)
	default:
		return nil, ErrNoFiles
	}
	res := &config.Outcome{Diagnostics: diags, Files: files}
	if diags.HasErrors() {
		return res, ErrInvalidConfig
	}
	if how.follow != nil {
		// A revision carries no server block nor the monitor's webhook
		// (its URL may carry a token), and the vault block may name this
		// host's token file: each daemon keeps its own.
		cur := d.rl.loaded.Current()
		next.Server, next.Vault = cur.Server, cur.Vault
		next.Monitor.Webhook = cur.Monitor.Webhook
	}
	res.Plan = config.Diff(d.rl.loaded.Current(), next)
	d.annotate(ctx, &res.Plan)
	for _, name := range d.providers.Stale(next) {
		for i, c := range res.Plan.Changes {
			if c.Kind == "provider" && c.Name == name && c.Restart == "" {
				res.Plan.Changes[i].Restart = "a provider of this name was removed by an earlier reload and its plugin still runs with the old block until a restart"
			}
		}
	}
	// Blocks that start executables on the daemon's host are the host's
	// trust, not an API token's: files sent over the API may not add or
	// change them (SIGHUP re-reads the daemon's own files, which may).
	if h := res.Plan.NeedsHostFiles(); !how.trusted && len(h) > 0 {
		var why []string
		for _, c := range h {
			why = append(why, strings.TrimSpace(c.Kind+" "+quoteName(c.Name))+": "+c.HostFiles)
		}
		return res, fmt.Errorf("%w: %s", ErrHostFiles, strings.Join(why, "; "))
	}
	if r := res.Plan.NeedsRestart(); len(r) > 0 {
		var why []string
		for _, c := range r {
			why = append(why, strings.TrimSpace(c.Kind+" "+quoteName(c.Name))+": "+c.Restart)
		}
		return res, fmt.Errorf("%w: %s", ErrNeedsRestart, strings.Join(why, "; "))
	}
	if planHash != "" && planHash != res.Plan.Hash() {
		return res, ErrPlanChanged
	}
	if dryRun {
		return res, nil
	}
	if res.Plan.Empty() {
		if how.follow != nil {
			d.rl.lastRev.Store(int64(how.follow.ID)) // followed: it runs already
		}
		return res, nil
	}

	// What the daemon runs: the new blocks with the server and Vault it
	// started with (dev mode overrides them; a change of either was
	// refused above).
	running := d.cfg.Current()
	eff := *next
	eff.Server = running.Server
	if eff.Vault == nil {
		eff.Vault = running.Vault
	}
	// The providers of new pools are known before the pools are: the fleet
	// reads both on its next tick. Update only records blocks (a plugin
	// starts on first use), so a failed sync forgets them again.
	// The files become a revision every daemon on the database follows
	// (followOthers); a follower records none of its own.
	rev := how.follow
	var srcFiles map[string]string
	if rev == nil {
		var err error
		if srcFiles, err = revisionFiles(files); err != nil {
			return res, err
		}
	}
	added := d.providers.Update(&eff)
	saved, err := store.ApplyConfig(ctx, d.db.Client, &eff, srcFiles, by)
	if err != nil {
		d.providers.Forget(added)
		return res, fmt.Errorf("apply: %w; the running configuration stays", err)
	}
	if rev == nil {
		rev = saved
	}
	d.rl.lastRev.Store(int64(rev.ID))
	// Committed: the rest (switch, audit event, followers) happens even if
	// the client that asked has gone.
	ctx = context.WithoutCancel(ctx)
	d.retire(running, &eff)
	d.cfg.Store(&eff)
	d.rl.loaded.Store(next)
	if d.mon != nil && d.mon.mon != nil {
		d.mon.mon.Tune(monitorTuning(eff.Monitor))
	}
	select {
	case d.rl.vendorsChanged <- struct{}{}:
	default: // a wake-up is already pending
	}
	res.Applied = true
	msg := fmt.Sprintf("configuration applied by %s (revision %d): %s", by, rev.ID, res.Plan.Summary())
	d.rl.ownMu.Lock()
	ev, err := events.Record(privacy.DecisionContext(ctx, privacy.Allow),
		events.Create(d.db.Event, events.ConfigApplied, time.Now()).SetMessage(msg), d.bus)
	if err == nil && d.db.Driver == store.Postgres { // only there does followOthers see it, and forget it
		d.rl.own[ev.ID] = true
	}
	d.rl.ownMu.Unlock()
	if err != nil {
		d.log.Warn("record event", "type", events.ConfigApplied, "err", err)
	}
	d.log.Info("configuration applied", "by", by, "revision", rev.ID, "plan", res.Plan.Summary())
	return res, nil
}

// revisionFiles are a loaded configuration's files by base name, as a
// revision stores them, within the limits of files sent to applyConfig.
// Left out, because they may hold a secret that must not reach the
// database: the server block (each daemon's own — listener, data
// directory, database — which a follower keeps; its dsn is the one place
// a password may still be written, a warning only), the monitor's
// webhook (its URL may carry a token; a follower keeps its own), and every
// comment (a commented-out block is text the loader never checked). What
// remains holds no secret: the loader refuses literal secrets everywhere
// else.
func revisionFiles(files map[string]*hcl.File) (map[string]string, error) {
	if len(files) > MaxReloadFiles {
		return nil, fmt.Errorf("%d configuration files, over the limit of %d", len(files), MaxReloadFiles)
	}
	out := make(map[string]string, len(files))
	from := map[string]string{}
	for path, f := range files {
		base := filepath.Base(path)
		if other, dup := from[base]; dup {
			return nil, fmt.Errorf("configuration files %s and %s have the same name; the daemons share files by name: rename one", other, path)
		}
		from[base] = path
		if len(f.Bytes) > config.MaxFileBytes {
			return nil, fmt.Errorf("configuration file %s: %d bytes, over the limit of %d", path, len(f.Bytes), config.MaxFileBytes)
		}
		wf, diags := hclwrite.ParseConfig(f.Bytes, path, hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("configuration file %s: %s", path, diags.Error())
		}
		for _, b := range wf.Body().Blocks() {
			switch b.Type() {
			case "server":
				wf.Body().RemoveBlock(b)
			case "monitor":
				for _, w := range b.Body().Blocks() {
					if w.Type() == "webhook" {
						b.Body().RemoveBlock(w)
					}
				}
			}
		}
		out[base] = string(withoutComments(wf.BuildTokens(nil)))
	}
	return out, nil
}

// withoutComments is the text of toks with every comment left out; a line
// comment's token carries its line's end, which stays.
func withoutComments(toks hclwrite.Tokens) []byte {
	var b bytes.Buffer
	for _, t := range toks {
		if t.Type == hclsyntax.TokenComment {
			if bytes.HasSuffix(t.Bytes, []byte("\n")) {
				b.WriteByte('\n')
			}
			continue
		}
		for range t.SpacesBefore {
			b.WriteByte(' ')
		}
		b.Write(t.Bytes)
	}
	return hclwrite.Format(b.Bytes())
}

func quoteName(n string) string {
	if n == "" {
		return ""
	}
	return fmt.Sprintf("%q", n)
}

// annotate notes on each removed pool the work it still has to drain.
func (d *Daemon) annotate(ctx context.Context, p *config.Plan) {
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	for i, c := range p.Changes {
		if c.Kind != "pool" || c.Action != config.Remove {
			continue
		}
		pl, err := d.db.Pool.Query().Where(pool.Name(c.Name)).Only(sys)
		var n int
		if err == nil {
			n, err = d.db.Task.Query().Where(task.PoolID(pl.ID), task.StateIn(task.StatePending, task.StateRunning)).Count(sys)
		}
		if err != nil {
			d.log.Warn("plan: count a removed pool's tasks", "pool", c.Name, "err", err)
			continue
		}
		p.Changes[i].Note = fmt.Sprintf("drains: %d pending or running tasks finish on its robots, which are then released", n)
	}
}

// sameVendor reports whether a vendor block is unchanged (its source
// position aside), so its poller and plugin keep running.
func sameVendor(a, b config.Vendor) bool {
	a.DeclRange, b.DeclRange = hcl.Range{}, hcl.Range{}
	return reflect.DeepEqual(a, b)
}

// vendorNames lists the names of a set of vendor pollers, sorted (logs).
func vendorNames[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// followReloads applies the files the daemon started from at each signal
// on Options.Reload (SIGHUP), until ctx ends. A refused reload is logged
// with its reasons and diagnostics; the running configuration stays.
func (d *Daemon) followReloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.opts.Reload:
		}
		// The certificate first and on its own: a renewal is the
		// common reason for the signal, and it needs no configuration
		// change (the files' paths are the server block's, which only
		// a restart changes). tls.go logs a refusal.
		_ = d.certs.reload()
		var (
			res *config.Outcome
			err error
		)
		for {
			// A signal during an API reload waits for it, as a
			// follower does: the operator's files are never dropped.
			res, err = d.Reload(ctx, "SIGHUP", nil, false)
			if !errors.Is(err, ErrReloadInProgress) || !retry.Sleep(ctx, time.Second) {
				break
			}
		}
		if ctx.Err() != nil {
			return
		}
		d.auditSIGHUP(ctx, res, err)
		if err != nil {
			d.log.Error("reload refused; the running configuration stays", "err", err, "diagnostics", errorDiags(res))
			d.refused(ctx, "SIGHUP", err)
			continue
		}
		if !res.Applied {
			d.log.Info("reload: no changes")
		}
	}
}

// drainLoop is the fleet's part for pools that left the configuration
// and still have robots: their VMs are followed as before (with no
// minimum to keep) and their robots released once their work is done
// (scale.Scaler.Drain).
func (d *Daemon) drainLoop(ctx context.Context, sc *scaling, warned map[string]bool) {
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	// Enrolled robots are the enterprise's machines, never released: a
	// removed pool of only those has nothing to drain (they stay, idle,
	// until revoked or the pool comes back).
	pools, err := d.db.Pool.Query().Where(pool.Active(false), pool.ProviderNEQ(""),
		pool.HasRobotsWith(robot.Enrolled(false),
			robot.StateIn(robot.StateProvisioning, robot.StateIdle, robot.StateBusy, robot.StateDraining, robot.StateSuspect))).All(sys)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("fleet: list draining pools", "err", err)
		}
		return
	}
	for _, p := range pools {
		q := *p
		q.Min = 0 // a pool that left the configuration keeps no robots
		err := d.fleet.Reconcile(ctx, &q)
		if err == nil {
			var left int
			left, err = sc.scaler.Drain(ctx, &q)
			if err == nil && left == 0 {
				d.log.Debug("pool drained", "pool", p.Name)
				d.drained(p.Name)
			}
		}
		switch {
		case err == nil:
			delete(warned, p.Name)
		case ctx.Err() != nil:
			return
		case errors.Is(err, scale.ErrProviderDown):
			if !warned[p.Name] {
				d.log.Warn("fleet: draining pool frozen while its provider is down", "pool", p.Name, "err", err)
				warned[p.Name] = true
			}
		default:
			d.log.Error("fleet: drain", "pool", p.Name, "err", err)
		}
	}
}

// followOthers makes the daemons of one PostgreSQL follow each other: when
// another daemon applies a configuration (its config.applied event comes
// through the relay), this one applies the latest configuration revision
// (the files that daemon applied, from its own files or through the API),
// not its own --config files. The event names the revision; the latest
// is taken, so that a follower that missed one still ends on the last.
// With no revision recorded (a database of an older version), it re-reads
// its own files as before. On SQLite there is one daemon.
func (d *Daemon) followOthers(ctx context.Context) {
	if d.db.Driver != store.Postgres {
		return
	}
	applied := d.bus.Subscribe(ctx, events.Filter{Types: map[events.Type]bool{events.ConfigApplied: true}})
	// An apply by another daemon between this one's start and its
	// subscription has no event left to see: catch up once.
	d.followLatest(ctx, "")
	for e := range applied {
		d.rl.ownMu.Lock()
		own := d.rl.own[e.ID]
		delete(d.rl.own, e.ID)
		d.rl.ownMu.Unlock()
		if own {
			continue
		}
		if !d.followLatest(ctx, e.Message) {
			return
		}
	}
}

// configDir is the directory of a --config path: itself for a directory,
// its parent for a file.
func configDir(path string) string {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return path
	}
	return filepath.Dir(path)
}

// followLatest applies the latest revision if it is not the one this
// daemon last recorded or followed (event: what another daemon said, ""
// when catching up). The revision is read again at each try, so a reload
// of this daemon's own that held the lock meanwhile is not undone by an
// older one. False when ctx ended.
func (d *Daemon) followLatest(ctx context.Context, event string) bool {
	for {
		rev, err := store.LatestRevision(ctx, d.db.Client)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			d.log.Error("another daemon applied a configuration; this one cannot read it and keeps its own", "event", event, "err", err)
			return true
		}
		if rev == nil && event == "" {
			return true // nothing recorded yet: nothing to catch up with
		}
		if rev != nil && int64(rev.ID) == d.rl.lastRev.Load() {
			return true
		}
		if rev == nil && len(d.opts.Paths) == 0 {
			d.log.Warn("another daemon applied a configuration; this one runs the built-in configuration and keeps it", "event", event)
			return true
		}
		by, srcs, how := "following another daemon", map[string][]byte(nil), reloadHow{trusted: true}
		if rev != nil {
			by = fmt.Sprintf("follow revision %d (%s)", rev.ID, rev.AppliedBy)
			srcs = make(map[string][]byte, len(rev.Files))
			for n, c := range rev.Files {
				srcs[n] = []byte(c)
			}
			how.follow = rev
		}
		d.log.Info("another daemon applied a configuration; applying it here", "event", event, "by", by)
		res, err := d.reload(ctx, by, srcs, false, "", how)
		if errors.Is(err, ErrReloadInProgress) {
			if !retry.Sleep(ctx, time.Second) {
				return false
			}
			continue
		}
		if err != nil {
			d.log.Error("following another daemon: reload refused; the running configuration stays", "err", err, "diagnostics", errorDiags(res))
			d.refused(ctx, "following another daemon", err)
			if rev != nil {
				d.rl.lastRev.Store(int64(rev.ID)) // refused once is refused: not again at every event
			}
		}
		return true
	}
}

// startRevision makes the files the daemon started from the latest
// revision, as an apply of them would: at start the daemon's own files
// win (they were synced into the database). Others follow at once. A
// newer revision applied through the API is thereby reverted: said loudly.
func (d *Daemon) startRevision(ctx context.Context) {
	if len(d.opts.Paths) == 0 {
		return // built-in configuration: no files to share
	}
	_, _, files := config.Load(d.opts.Paths...) // checked whole at start already; only the bytes
	srcFiles, err := revisionFiles(files)
	if err != nil {
		d.log.Error("the configuration files cannot be shared with the other daemons", "err", err)
		return
	}
	latest, err := store.LatestRevision(ctx, d.db.Client)
	if err != nil {
		d.log.Error("read the latest configuration revision", "err", err)
		return
	}
	if latest != nil && latest.Hash == store.RevisionHash(srcFiles) {
		d.rl.lastRev.Store(int64(latest.ID))
		return
	}
	if latest != nil && strings.HasPrefix(latest.AppliedBy, "token ") {
		d.log.Warn("THE DAEMON'S --config FILES REVERT A CONFIGURATION APPLIED THROUGH THE API: commit what you apply to every daemon's files",
			"reverted_revision", latest.ID, "applied_by", latest.AppliedBy, "applied_at", latest.CreatedAt)
	}
	// The start synced these files already; syncing them again with the
	// revision keeps "a revision exists only with its sync" true.
	rev, err := store.ApplyConfig(ctx, d.db.Client, d.opts.Config, srcFiles, "start")
	if err != nil {
		d.log.Error("record the configuration revision", "err", err)
		return
	}
	d.rl.lastRev.Store(int64(rev.ID))
	d.rl.ownMu.Lock()
	defer d.rl.ownMu.Unlock()
	ev, err := events.Record(privacy.DecisionContext(ctx, privacy.Allow), events.Create(d.db.Event, events.ConfigApplied, time.Now()).
		SetMessage(fmt.Sprintf("configuration applied by start (revision %d): the daemon's --config files", rev.ID)), d.bus)
	if err != nil {
		d.log.Warn("record event", "type", events.ConfigApplied, "err", err)
		return
	}
	if d.db.Driver == store.Postgres {
		d.rl.own[ev.ID] = true
	}
}

// auditSIGHUP records a reload by signal in the audit trail: an
// operator on the host changed the running configuration (or tried to).
// The target is the revision the daemon runs after it; the arguments the
// files' names and sizes, never their content.
func (d *Daemon) auditSIGHUP(ctx context.Context, res *config.Outcome, err error) {
	e := audit.Entry{Actor: audit.ActorSIGHUP, Action: "reloadConfig", Outcome: audit.OK,
		Target: fmt.Sprintf("revision %d", d.rl.lastRev.Load())}
	switch {
	case err != nil:
		e.Outcome, e.Code = audit.Error, "CONFIG_NOT_APPLIED"
	case res != nil && !res.Applied:
		e.Target += " (no changes)"
	}
	if res != nil {
		files := make(map[string][]byte, len(res.Files))
		for path, f := range res.Files {
			files[path] = f.Bytes
		}
		e.Arguments = audit.ConfigFiles(files)
	}
	if rerr := audit.Record(ctx, d.db.Client, e); rerr != nil {
		d.log.Error("audit entry not recorded", "action", e.Action, "actor", e.Actor, "err", rerr)
	}
}

// refused records a config.refused event for a reload nobody waits on
// the answer of (SIGHUP reports success to systemctl either way). The
// reason names blocks and files, never a value: the loader refuses
// literal secrets and the error carries no diagnostics' source.
func (d *Daemon) refused(ctx context.Context, by string, err error) {
	msg := fmt.Sprintf("reload by %s refused; the running configuration stays: %v", by, err)
	if _, rerr := events.Record(privacy.DecisionContext(ctx, privacy.Allow),
		events.Create(d.db.Event, events.ConfigRefused, time.Now()).SetMessage(msg), d.bus); rerr != nil && ctx.Err() == nil {
		d.log.Warn("record event", "type", events.ConfigRefused, "err", rerr)
	}
}

// errorDiags are a refused reload's errors, located, for the log.
func errorDiags(res *config.Outcome) []string {
	var out []string
	if res != nil {
		for _, dg := range res.Diagnostics {
			if dg.Severity == hcl.DiagError {
				out = append(out, dg.Error())
			}
		}
	}
	return out
}
