// Package daemon is the composition root of the rpacloud daemon: it opens
// storage, syncs the configuration into it, starts Vault, plugins, the
// queue, the leader's loops and the HTTP endpoints (GraphQL, health,
// metrics, dashboard), and stops them in order; Reload (reload.go) applies
// a new configuration to it live (SIGHUP, applyConfig). It holds no rules of its
// own; every decision lives in a core room. It sits above the API (it
// imports graph and core) and only cmd/rpacloud imports it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/cmd/rpacloud/builtin"
	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/lease"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/trigger"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/token"
)

// Options configure a daemon.
type Options struct {
	Config  *config.Config
	Dev     bool          // embedded mode: local robots are stopped with the daemon
	Logger  *slog.Logger  // default: slog.Default()
	SelfExe string        // path of the rpacloud binary (robots and built-in plugins)
	Stdout  io.Writer     // where the start-up banner goes; default os.Stdout
	Ready   chan<- string // receives the listen address once serving (tests)
	// NewToken (dev) issues a new admin token even when the one in
	// DataDir/admin.token is still valid, which revokes it.
	NewToken bool
	// FleetInterval overrides how often pools are reconciled (tests).
	FleetInterval time.Duration
	// SweepInterval is how often expired attempts are swept; default 5s.
	SweepInterval time.Duration
	// Loaded is the configuration as read from its files, before the
	// command's overrides (dev's server block and Vault, the DSN from the
	// environment): reload plans compare with it, so an override is not a
	// change. nil: Config.
	Loaded *config.Config
	// Paths are the configuration files or directories a reload without
	// files (SIGHUP) re-reads; empty: the built-in configuration.
	Paths []string
	// Reload: each signal re-reads Paths and applies them (SIGHUP).
	Reload <-chan os.Signal
	// Listener, when set, is the bound socket to serve on instead of
	// listening on the server block's address: `rpacloud dev` binds its
	// address before it starts a Vault dev server, so that Vault's free
	// port cannot be the daemon's.
	Listener net.Listener
}

// Daemon is a running rpacloud core.
type Daemon struct {
	opts      Options
	log       *slog.Logger
	db        *store.DB
	bus       *events.Bus
	queue     *dispatch.Queue
	robots    *robotapi.Service // set by routes (http.go)
	triggers  *trigger.Service  // leader-only loop, and the API's pause/resume/fire
	host      *pluginhost.Host
	fleet     *scale.Fleet
	providers *scale.Providers
	publicURL string
	started   time.Time
	metricsH  http.Handler // /metrics, set by routes (http.go)
	mon       *monitoring  // monitoring.go
	vault     *vaultState  // vault.go
	cfg       *config.Holder
	rl        *reloads // reload.go
	tokens    *auth.Cache
	metrics   *metrics.Metrics // this daemon's own counters and histograms (metrics.go)
	certs     *certs           // tls.go: nil when serving plain HTTP
}

// Run starts the daemon and blocks until ctx is cancelled, then shuts down
// gracefully: HTTP first (so no new work is handed out), then the loops,
// then plugins, then the database.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 5 * time.Second
	}
	cfg := o.Config
	srv := cfg.Server
	if err := os.MkdirAll(srv.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", srv.DataDir, err)
	}
	d := &Daemon{opts: o, log: o.Logger, bus: events.New(), started: time.Now(), metrics: metrics.New()}
	d.initReloads() // reload.go

	driver, dsn := srv.Database.Driver, srv.Database.DSN
	switch driver {
	case "", store.SQLite:
		driver = store.SQLite
		if dsn == "" {
			dsn = filepath.Join(srv.DataDir, "rpacloud.db")
		}
	case store.Postgres:
		if dsn == "" {
			dsn = os.Getenv("RPACLOUD_DATABASE_DSN")
		}
	}
	db, err := store.Open(ctx, driver, dsn)
	if err != nil {
		return err
	}
	d.db = db
	defer db.Close()
	if err := store.SyncConfig(ctx, db.Client, cfg); err != nil {
		return err
	}
	d.startRevision(ctx) // reload.go: the files just synced are what every daemon runs
	adminToken, err := d.adminToken(ctx)
	if err != nil {
		return err
	}

	d.queue = dispatch.New(db.Client, dispatch.Options{Bus: d.bus, Logger: o.Logger, MaxResultBytes: int(o.Config.Server.Limits.ResultBytes), Metrics: d.metrics})
	d.triggers = trigger.New(trigger.Options{Client: db.Client, Queue: d.queue, Config: d.live(), Bus: d.bus, Logger: o.Logger})
	if err := d.openVault(); err != nil { // vault.go
		return err
	}
	if err := d.startMonitoring(ctx, driver, dsn); err != nil { // monitoring.go
		return err
	}
	defer d.stopMonitoring()
	// Absolute: robots of the local provider run in another directory.
	pluginDir := srv.PluginDirectory()
	if abs, err := filepath.Abs(pluginDir); err == nil {
		pluginDir = abs
	}
	d.host = pluginhost.New(pluginhost.Options{Dir: pluginDir, Logger: o.Logger, SelfExe: o.SelfExe, Builtin: builtin.Has, BuiltinInfo: builtin.Info})
	defer d.host.Close()
	po := scale.ProvidersOptions{DataDir: srv.DataDir, PluginDir: pluginDir, SelfExe: o.SelfExe, StopRobotsOnExit: o.Dev, Logger: o.Logger}
	if d.vault != nil && d.vault.svc != nil {
		po.Resolve = d.vault.svc.Resolve
	}
	d.providers = scale.NewProviders(d.host, cfg, po)

	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", srv.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", srv.Listen, err)
		}
	}
	addr := ln.Addr().String()
	scheme := "http://"
	tlsCerts, err := newCerts(srv, o.Logger) // tls.go
	if err != nil {
		ln.Close()
		return fmt.Errorf("tls: %w", err)
	}
	if tlsCerts != nil {
		scheme = "https://"
		ln = tlsCerts.listener(ln, srv)
	}
	d.certs = tlsCerts
	publicURL := srv.PublicURL
	if publicURL == "" || strings.HasSuffix(srv.Listen, ":0") {
		publicURL = scheme + addr
	}
	d.publicURL = publicURL
	d.fleet = &scale.Fleet{
		Client: db.Client, Bus: d.bus, ServerURL: publicURL, Log: o.Logger,
		Providers: d.providers.Get,
	}

	// Token checks answer from memory; token.revoked events, this
	// daemon's and (through the relay) every other's, drop a revoked
	// token at once.
	d.tokens = auth.NewCache(db.Client, auth.Options{})
	tokensCtx, stopTokens := context.WithCancel(context.WithoutCancel(ctx))
	defer stopTokens()
	d.tokens.Follow(tokensCtx, d.bus)

	// Websocket connections are hijacked and do not see Shutdown; a base
	// context cancelled before Shutdown ends their subscriptions.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	httpSrv := &http.Server{
		Handler:           d.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	metricsURL, stopMetrics, err := d.serveMetricsApart(serveErr) // metricslisten.go
	if err != nil {
		_ = httpSrv.Close()
		return err
	}
	defer stopMetrics()

	fmt.Fprintf(o.Stdout, "rpacloud is serving on %s\n", publicURL)
	if metricsURL == "" {
		metricsURL = publicURL + "/metrics"
	}
	fmt.Fprintf(o.Stdout, "  dashboard  %s/\n  graphql    %s/graphql\n  health     %s/healthz\n  metrics    %s\n",
		publicURL, publicURL, publicURL, metricsURL)
	if adminToken != "" {
		fmt.Fprintf(o.Stdout, "  admin token (also in %s):\n    %s\n", d.adminTokenPath(), adminToken)
	} else {
		fmt.Fprintf(o.Stdout, "  admin token: in %s\n", d.adminTokenPath())
	}
	o.Logger.Info("serving", "addr", addr, "database", driver, "plugins", pluginDir)
	if o.Ready != nil {
		o.Ready <- addr
	}

	leader, err := d.leaderServices()
	if err != nil {
		return err
	}
	loops, stopLoops := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { d.runVault(loops) })      // vault.go
	wg.Go(func() { d.runMonitoring(loops) }) // monitoring.go: this daemon's part
	wg.Go(func() { leader.Run(loops) })
	wg.Go(func() { d.followReloads(loops) }) // reload.go: SIGHUP
	wg.Go(func() { d.followOthers(loops) })  // reload.go: the other daemons' applies
	// Every daemon writes the robots' moments it saw (dispatch/liveness.go);
	// it stops after the HTTP server, so its last flush has them all.
	wg.Go(func() { d.queue.RunLivenessFlusher(loops, 0, d.log) })
	// The robot protocol's lot of waiting robots watches events and runs
	// its backstops for the daemon's lifetime (core/robotapi/lot.go).
	wg.Go(func() { d.robots.Run(loops) })

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	}
	o.Logger.Info("shutting down")
	cancelBase()
	shCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		o.Logger.Warn("http shutdown", "err", err)
	}
	stopLoops()
	wg.Wait()
	d.host.Close()
	o.Logger.Info("stopped")
	return runErr
}

func (d *Daemon) adminTokenPath() string {
	return filepath.Join(d.live().Current().Server.DataDir, "admin.token")
}

// adminToken makes sure an admin can get in. In dev mode the admin token of
// the data directory's admin.token is kept while it is valid, so a browser
// or kiosk holding it works across restarts, and printed; a new one is
// issued when there is none, it no longer works, or Options.NewToken asks.
// In server mode one is made only when none exists, and written to the
// data directory, never to the log. The database keeps only hashes.
func (d *Daemon) adminToken(ctx context.Context) (string, error) {
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	if d.opts.Dev && !d.opts.NewToken {
		if raw, err := os.ReadFile(d.adminTokenPath()); err == nil {
			secret := strings.TrimSpace(string(raw))
			if p, err := auth.Authenticate(ctx, d.db.Client, secret); err == nil && p.Role == viewer.Admin {
				return secret, nil
			}
		}
	}
	if !d.opts.Dev {
		n, err := d.db.Token.Query().Where(token.RoleEQ(token.RoleAdmin), token.RevokedAtIsNil()).Count(sys)
		if err != nil {
			return "", fmt.Errorf("admin token: %w", err)
		}
		if n > 0 {
			return "", nil
		}
	}
	secret, err := auth.Tokens{Client: d.db.Client, Bus: d.bus}.Issue(ctx, auth.IssueRequest{Name: "admin", Role: viewer.Admin})
	if err != nil {
		return "", err
	}
	// A token made without the API: the trail says the daemon made it.
	if err := audit.Record(ctx, d.db.Client, audit.BootstrapToken("admin")); err != nil {
		d.log.Error("audit entry not recorded", "action", "createToken", "actor", audit.ActorBootstrap, "err", err)
	}
	if err := writeSecretFile(d.adminTokenPath(), secret); err != nil {
		return "", err
	}
	if !d.opts.Dev {
		return "", nil
	}
	return secret, nil
}

// writeSecretFile writes atomically with owner-only permissions.
func writeSecretFile(path, secret string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// leaderServices are the loops that must run on one daemon of a
// deployment, under one election: the time-out sweeper, the fleet and
// scaler loop, the monitor's rule evaluation, the vendor pollers, the
// triggers and the retention pruner.
// Daemons sharing a PostgreSQL campaign for one lease; an SQLite file has
// one daemon, which always leads.
func (d *Daemon) leaderServices() (*lease.Group, error) {
	o := lease.GroupOptions{Logger: d.log}
	if d.db.Driver == store.Postgres {
		e, err := d.newElector()
		if err != nil {
			return nil, fmt.Errorf("leader election: %w", err)
		}
		o.Elector = e
	}
	return lease.NewGroup(o,
		lease.Service{Name: "sweeper", Run: d.sweepLoop},
		lease.Service{Name: "fleet", Run: d.fleetLoop},
		lease.Service{Name: "monitor", Run: d.runMonitorRules},         // monitoring.go
		lease.Service{Name: "vendor pollers", Run: d.runVendorPollers}, // vendors.go
		lease.Service{Name: "triggers", Run: d.triggers.Run},           // core/trigger
		lease.Service{Name: "retention", Run: d.retentionLoop},         // retention.go
	), nil
}

// newElector campaigns for the daemon's one leader lease. Its TTL, and
// so the pause of the leader-only loops when their daemon dies, covers
// three rounds of the slowest loop and at least 15 s.
func (d *Daemon) newElector() (*lease.Elector, error) {
	host, _ := os.Hostname()
	ttl := max(3*d.fleetInterval(), 3*d.opts.SweepInterval, 15*time.Second)
	return lease.New(d.db.Client, "rpacloud.leader", fmt.Sprintf("%s:%d:%d", host, os.Getpid(), d.started.UnixNano()),
		lease.Options{TTL: ttl})
}

func (d *Daemon) fleetInterval() time.Duration {
	if d.opts.FleetInterval > 0 {
		return d.opts.FleetInterval
	}
	return 5 * time.Second
}

// fleetLoop reconciles and scales every active pool while this daemon
// leads in term.
func (d *Daemon) fleetLoop(ctx context.Context, term int64) {
	interval := d.fleetInterval()
	warned := map[string]bool{}
	sc := d.newScaling(term)
	for {
		pools, err := d.db.Pool.Query().Where(pool.Active(true)).All(privacy.DecisionContext(ctx, privacy.Allow))
		if err != nil && ctx.Err() == nil {
			d.log.Error("fleet: list pools", "err", err)
		}
		d.drainLoop(ctx, sc, warned) // reload.go: pools that left the configuration
		for _, p := range pools {
			err := d.fleet.Reconcile(ctx, p)
			switch {
			case err == nil:
				delete(warned, p.Name)
				sc.step(ctx, p)
			case ctx.Err() != nil:
				return
			case errors.Is(err, scale.ErrProviderDown):
				// Logged once per outage: the plugin host logs the
				// restarts themselves.
				if !warned[p.Name] {
					d.log.Warn("fleet: pool frozen while its provider is down", "pool", p.Name, "err", err)
					warned[p.Name] = true
				}
			default:
				d.log.Error("fleet: reconcile", "pool", p.Name, "err", err)
			}
		}
		if !retry.Sleep(ctx, interval) {
			return
		}
	}
}

// sweepLoop runs the time-out sweeper while this daemon leads. A robot
// silent for the monitor's heartbeat_timeout (read at each round, so a
// reload applies) has its attempt abandoned then, not at max_duration.
func (d *Daemon) sweepLoop(ctx context.Context, _ int64) {
	d.queue.RunSweeper(ctx, dispatch.SweeperOptions{Interval: d.opts.SweepInterval, Logger: d.log,
		LostAfter: func() time.Duration { return d.mon.mon.Tuning().Thresholds.HeartbeatTimeout }})
}

// Client returns the ent client (tests).
func (d *Daemon) Client() *ent.Client { return d.db.Client }
