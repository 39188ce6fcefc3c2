package daemon

import (
	"context"
	"net/http"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/monitor/rules"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/graph"
	"github.com/rpacloud/rpacloud/graph/dashboard"
)

// monitoring is the daemon's part of core/monitor: the monitor itself and,
// on PostgreSQL, the relay (core/events) that shares events with the other
// daemons.
type monitoring struct {
	mon   *monitor.Monitor
	relay *events.PGRelay
}

// startMonitoring builds the monitor from the configuration's monitor
// block and, on PostgreSQL, starts relaying events before anything is
// published, so that subscribers on other daemons miss nothing.
func (d *Daemon) startMonitoring(ctx context.Context, driver, dsn string) error {
	c := d.opts.Config.Monitor
	t := monitorTuning(c)
	o := monitor.Options{
		Bus: d.bus, Logger: d.log, Config: d.live(),
		Interval: t.Interval, SampleInterval: t.SampleInterval, Thresholds: t.Thresholds,
	}
	if c.Webhook != nil {
		o.Webhook = monitor.NewWebhook(c.Webhook.URL, c.Webhook.MinSeverity)
	}
	d.mon = &monitoring{mon: monitor.New(d.db.Client, o)}
	if driver == store.Postgres {
		r, err := events.StartPGRelay(ctx, dsn, d.bus, d.db.Client, d.log)
		if err != nil {
			return err
		}
		d.mon.relay = r
	}
	return nil
}

// monitorTuning is the monitor block's part that a reload changes live
// (monitor.Tune); the webhook needs a restart (config.Diff says so).
func monitorTuning(c config.Monitor) monitor.Tuning {
	return monitor.Tuning{
		Interval: c.Interval, SampleInterval: c.SampleInterval,
		Thresholds: rules.Thresholds{
			HeartbeatTimeout: c.HeartbeatTimeout, HungGrace: c.HungGrace, ScheduleGrace: c.ScheduleGrace,
			FailureMinRuns: c.FailureMinRuns, FailureJump: float64(c.FailureJump) / 100, QueueSamples: c.QueueSamples,
			StuckAfter: c.StuckAfter, PausedAfter: c.PausedAfter,
			DataErrorRate: float64(c.DataErrorPercent) / 100,
		},
	}
}

// runMonitorRules samples the pools and evaluates the anomaly rules; it
// runs among the leader services, so one daemon writes the anomalies.
func (d *Daemon) runMonitorRules(ctx context.Context, _ int64) { d.mon.mon.Run(ctx) }

// runMonitoring is the monitor's part on every daemon: the webhook posts
// the changes this daemon makes, including those made by hand through its
// API.
func (d *Daemon) runMonitoring(ctx context.Context) { d.mon.mon.Notify(ctx) }

func (d *Daemon) stopMonitoring() {
	if d.mon != nil && d.mon.relay != nil {
		d.mon.relay.Close()
	}
}

// monitoringRoutes gives the GraphQL resolvers the monitor and serves the
// dashboard's bundled scripts.
func (d *Daemon) monitoringRoutes(mux *http.ServeMux, res *graph.Resolver) {
	res.Monitor = d.mon.mon
	mux.Handle("GET /assets/", dashboard.Handler())
}
