// Package monitor turns what happens in the fleet into the monitoring
// model: it samples pools for the dashboard's time series, runs the anomaly
// rules (core/monitor/rules) over a snapshot of the database, keeps the
// Anomaly rows in step with them, publishes every change as an event, and
// notifies a webhook. CountPools is the one count of a pool's robots and
// tasks, shared with the GraphQL API and the metrics. (Events travel
// between daemons through core/events.PGRelay.)
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/poolsample"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

// Options configure a Monitor. Zero values take defaults.
type Options struct {
	Bus    *events.Bus
	Logger *slog.Logger
	Now    func() time.Time
	// Config supplies schedules and vendors, read at each evaluation so
	// that a reload reaches the rules; a reload changes the thresholds and
	// intervals below with Tune.
	Config config.Live
	// Thresholds tune the rules.
	Thresholds rules.Thresholds
	// Interval between two rule evaluations; default 2s.
	Interval time.Duration
	// SampleInterval between two pool samples; default 10s.
	SampleInterval time.Duration
	// Retention of pool samples; default 8 days (the week window and a day).
	Retention time.Duration
	// Webhook, when set, receives every anomaly change.
	Webhook *Webhook
}

// Monitor is the daemon's monitoring service.
type Monitor struct {
	client *ent.Client
	o      Options
	log    *slog.Logger

	mu        sync.Mutex
	lastPrune time.Time

	tuning atomic.Pointer[Tuning] // Tune; read at each use
}

// Tuning is what a reload may change in a running monitor: the rules'
// thresholds and the two intervals. Zero values take defaults.
type Tuning struct {
	Thresholds     rules.Thresholds
	Interval       time.Duration
	SampleInterval time.Duration
}

func (t Tuning) withDefaults() Tuning {
	if t.Interval <= 0 {
		t.Interval = 2 * time.Second
	}
	if t.SampleInterval <= 0 {
		t.SampleInterval = 10 * time.Second
	}
	t.Thresholds = t.Thresholds.WithDefaults()
	return t
}

// Tune replaces the thresholds and intervals (a reload of the monitor
// block); the running loops take them at their next round.
func (m *Monitor) Tune(t Tuning) { t = t.withDefaults(); m.tuning.Store(&t) }

func (m *Monitor) tune() *Tuning { return m.tuning.Load() }

// Tuning returns the thresholds and intervals in use.
func (m *Monitor) Tuning() Tuning { return *m.tune() }

// New returns a monitor on client.
func New(client *ent.Client, o Options) *Monitor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention <= 0 {
		o.Retention = 8 * 24 * time.Hour
	}
	if o.Config == nil {
		o.Config = &config.Config{}
	}
	m := &Monitor{client: client, o: o, log: o.Logger}
	m.Tune(Tuning{Thresholds: o.Thresholds, Interval: o.Interval, SampleInterval: o.SampleInterval})
	return m
}

// Bus is the event bus the monitor publishes on.
func (m *Monitor) Bus() *events.Bus { return m.o.Bus }

// Client is the storage the monitor reads.
func (m *Monitor) Client() *ent.Client { return m.client }

func (m *Monitor) now() time.Time { return m.o.Now().UTC() }

func system(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

// Run samples and evaluates until ctx ends. The daemon runs it on one
// daemon of a deployment (its leader services); should two overlap during
// a failover, the unique open key keeps one open anomaly per condition.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if err := m.Sample(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("monitor: sample pools", "err", err)
			}
			if !retry.Sleep(ctx, m.tune().SampleInterval) {
				return
			}
		}
	})
	wg.Go(func() {
		for retry.Sleep(ctx, m.tune().Interval) {
			if err := m.Detect(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("monitor: detect anomalies", "err", err)
			}
		}
	})
	wg.Wait()
}

// Notify posts this daemon's anomaly changes to the webhook, if any, until
// ctx ends. Every daemon runs it, not only the one running Run: changes
// made by hand (Acknowledge, Resolve) are posted by the daemon that made
// them.
func (m *Monitor) Notify(ctx context.Context) {
	if m.o.Webhook != nil {
		m.o.Webhook.Run(ctx, m)
	}
}

// Sample records one reading of every active pool.
func (m *Monitor) Sample(ctx context.Context) error {
	ctx = system(ctx)
	now := m.now()
	pools, err := m.client.Pool.Query().Where(pool.Active(true)).All(ctx)
	if err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	counts, err := CountPools(ctx, m.client, true)
	if err != nil {
		return err
	}
	creates := make([]*ent.PoolSampleCreate, 0, len(pools))
	for _, p := range pools {
		c := counts[p.ID]
		creates = append(creates, m.client.PoolSample.Create().SetAt(now).SetPoolID(p.ID).
			SetRobots(c.Robots).SetIdle(c.Idle).SetBusy(c.Busy).SetPending(c.Pending).SetRunning(c.Running).SetMax(p.Max))
	}
	if len(creates) > 0 {
		if err := m.client.PoolSample.CreateBulk(creates...).Exec(ctx); err != nil {
			return fmt.Errorf("record pool samples: %w", err)
		}
	}
	m.mu.Lock()
	prune := now.Sub(m.lastPrune) > time.Hour
	if prune {
		m.lastPrune = now
	}
	m.mu.Unlock()
	if prune {
		if _, err := m.client.PoolSample.Delete().Where(poolsample.AtLT(now.Add(-m.o.Retention))).Exec(ctx); err != nil {
			return fmt.Errorf("prune pool samples: %w", err)
		}
	}
	return nil
}

// Detect evaluates the rules once and writes the outcome.
func (m *Monitor) Detect(ctx context.Context) error {
	ctx = system(ctx)
	st, err := m.Snapshot(ctx)
	if err != nil {
		return err
	}
	findings := rules.Evaluate(st, m.tune().Thresholds)
	openRows, err := m.client.Anomaly.Query().Where(anomaly.StatusNEQ(anomaly.StatusResolved)).
		Select(anomaly.FieldID, anomaly.FieldKey).All(ctx)
	if err != nil {
		return fmt.Errorf("open anomalies: %w", err)
	}
	open := make([]rules.Open, len(openRows))
	for i, a := range openRows {
		open[i] = rules.Open{ID: a.ID, Key: a.Key}
	}
	plan := rules.Reconcile(open, findings)
	for _, f := range plan.Create {
		if err := m.open(ctx, f); err != nil {
			return err
		}
	}
	for _, r := range plan.Resolve {
		if _, err := m.resolve(ctx, r.ID, "monitor", r.Resolution); err != nil {
			return err
		}
	}
	return nil
}

func (m *Monitor) open(ctx context.Context, f rules.Finding) error {
	s := f.Subject
	a, err := m.client.Anomaly.Create().
		SetRule(anomaly.Rule(f.Rule)).SetKey(f.Key).SetOpenKey(f.Key).
		SetSeverity(anomaly.Severity(f.Severity)).SetTitle(f.Title).SetMessage(f.Message).
		SetSince(f.Since.UTC()).SetDetectedAt(m.now()).
		SetNillableCustomerID(s.CustomerID).SetNillablePoolID(s.PoolID).SetNillableProcessID(s.ProcessID).
		SetNillableRobotID(s.RobotID).SetNillableVMID(s.VMID).SetNillableTaskID(s.TaskID).
		SetVendor(s.Vendor).SetFacts(maps.Clone(f.Facts)).
		Save(ctx)
	if ent.IsConstraintError(err) {
		return nil // another daemon opened it first
	}
	if err != nil {
		return fmt.Errorf("open anomaly %s: %w", f.Key, err)
	}
	m.log.Warn("anomaly", "rule", f.Rule, "severity", f.Severity, "title", f.Title)
	return m.publish(ctx, events.AnomalyOpened, a)
}

// resolve closes an anomaly; it reports false when it was already resolved.
func (m *Monitor) resolve(ctx context.Context, id int, by, resolution string) (*ent.Anomaly, error) {
	now := m.now()
	n, err := m.client.Anomaly.Update().Where(anomaly.ID(id), anomaly.StatusNEQ(anomaly.StatusResolved)).
		SetStatus(anomaly.StatusResolved).ClearOpenKey().SetResolvedAt(now).SetResolvedBy(by).SetResolution(resolution).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("resolve anomaly %d: %w", id, err)
	}
	a, err := m.client.Anomaly.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("resolve anomaly %d: %w", id, err)
	}
	if n == 0 {
		return a, nil
	}
	return a, m.publish(ctx, events.AnomalyResolved, a)
}

func (m *Monitor) publish(ctx context.Context, typ events.Type, a *ent.Anomaly) error {
	_, err := events.Record(ctx, events.Create(m.client.Event, typ, m.now()).SetMessage(a.Title).SetAnomalyID(a.ID).
		SetNillableCustomerID(a.CustomerID).SetNillablePoolID(a.PoolID).SetNillableProcessID(a.ProcessID).
		SetNillableRobotID(a.RobotID).SetNillableTaskID(a.TaskID).SetNillableVMID(a.VMID).
		SetVendor(a.Vendor).SetStatus(string(a.Status)), m.o.Bus)
	if err != nil {
		return err
	}
	if m.o.Webhook != nil {
		m.o.Webhook.enqueue(typ, a, m.log)
	}
	return nil
}

// Acknowledge marks an anomaly as seen by someone; it stays until resolved.
// The caller has checked that by may do so and can see the anomaly.
func (m *Monitor) Acknowledge(ctx context.Context, id int, by, note string) (*ent.Anomaly, error) {
	sctx := system(ctx)
	upd := m.client.Anomaly.Update().Where(anomaly.ID(id), anomaly.StatusEQ(anomaly.StatusOpen)).
		SetStatus(anomaly.StatusAcknowledged).SetAcknowledgedAt(m.now()).SetAcknowledgedBy(by)
	if note != "" {
		upd.SetResolution(note)
	}
	n, err := upd.Save(sctx)
	if err != nil {
		return nil, fmt.Errorf("acknowledge anomaly %d: %w", id, err)
	}
	a, err := m.client.Anomaly.Get(sctx, id)
	if err != nil {
		return nil, fmt.Errorf("acknowledge anomaly %d: %w", id, err)
	}
	if n > 0 {
		if err := m.publish(sctx, events.AnomalyAcknowledged, a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Resolve closes an anomaly by hand. If the condition still holds, the
// rules open a new anomaly for it at their next evaluation.
func (m *Monitor) Resolve(ctx context.Context, id int, by, resolution string) (*ent.Anomaly, error) {
	return m.resolve(system(ctx), id, by, resolution)
}
