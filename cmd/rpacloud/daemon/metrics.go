package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/monitor"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/task"
)

// collectors are everything /metrics exports: Go and process metrics, what
// is read at scrape time (collector) and the daemon's own counters and
// histograms (core/metrics).
func (d *Daemon) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &collector{d: d}}, d.metrics.Collectors()...)
}

// collector reads the queue's state from the database at scrape time, so
// every daemon sharing a database reports the same numbers.
type collector struct{ d *Daemon }

var (
	descTasks    = prometheus.NewDesc("rpacloud_tasks", "Unfinished tasks by pool and state (pending, running).", []string{"pool", "state"}, nil)
	descRobots   = prometheus.NewDesc("rpacloud_robots", "Robots by pool and state.", []string{"pool", "state"}, nil)
	descPlugin   = prometheus.NewDesc("rpacloud_provider_up", "1 when the provider plugin is healthy.", []string{"provider", "plugin"}, nil)
	descRestarts = prometheus.NewDesc("rpacloud_provider_restarts_total", "Restarts of the provider plugin.", []string{"provider", "plugin"}, nil)
	descDropped  = prometheus.NewDesc("rpacloud_events_dropped_total", "Events not delivered to a slow subscriber.", nil, nil)
	descSubs     = prometheus.NewDesc("rpacloud_event_subscribers", "Open event subscriptions.", nil, nil)
	descScrape   = prometheus.NewDesc("rpacloud_scrape_error", "1 when reading the database for metrics failed.", nil, nil)
	// This daemon's own statements (not the database's total, which other
	// daemons share): rpacloud bench fleet divides them by tasks done.
	descStatements = prometheus.NewDesc("rpacloud_db_statements_total", "Statements this daemon sent to the database through ent, by kind (read, write, other; commit and rollback count transactions ended).", []string{"kind"}, nil)
	descParked     = prometheus.NewDesc("rpacloud_robots_parked", "Robots waiting for work in this daemon's memory (core/robotapi).", nil, nil)
	descWakes      = prometheus.NewDesc("rpacloud_robot_wakes_total", "Parked robots woken to claim.", nil, nil)
	descClaims     = prometheus.NewDesc("rpacloud_robot_claims_total", "Robot polls by how they were served: db (a claim read the database) or parked (parked without a statement).", []string{"path"}, nil)
	// Read from the database, like the queue: every daemon reports the
	// same numbers (take max, not sum, across daemons).
	descAnomalies = prometheus.NewDesc("rpacloud_anomalies_open", "Anomalies not resolved, by rule, severity and status (open, acknowledged).", []string{"rule", "severity", "status"}, nil)
	// Every plugin this daemon supervises (core/pluginhost): providers,
	// and the vendor and crawler plugins it started.
	descPluginUp       = prometheus.NewDesc("rpacloud_plugin_up", "1 when the plugin's process runs and answers, by kind (provider, vendor, crawler), block name and plugin.", []string{"kind", "name", "plugin"}, nil)
	descPluginRestarts = prometheus.NewDesc("rpacloud_plugin_restarts_total", "Restarts of the plugin's process after it crashed or stopped answering, by kind, block name and plugin.", []string{"kind", "name", "plugin"}, nil)
	descVaultUp        = prometheus.NewDesc("rpacloud_vault_up", "1 when Vault is unsealed, reachable and the daemon is logged in (the /healthz check at scrape time); absent without a vault block.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTasks, descRobots, descPlugin, descRestarts, descDropped, descSubs, descScrape, descStatements, descParked, descWakes, descClaims, descAnomalies, descPluginUp, descPluginRestarts, descVaultUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(privacy.DecisionContext(context.Background(), privacy.Allow), 5*time.Second)
	defer cancel()
	failed := 0.0
	if err := c.collectDB(ctx, ch); err != nil {
		c.d.log.Warn("metrics: read database", "err", err)
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(descScrape, prometheus.GaugeValue, failed)
	for name, st := range c.d.providers.Statuses() {
		up := 0.0
		if st.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descPlugin, prometheus.GaugeValue, up, name, st.Plugin)
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.Restarts), name, st.Plugin)
		pluginMetrics(ch, "provider", name, st)
	}
	if c.d.host != nil {
		for _, k := range c.d.host.KindStatuses() {
			pluginMetrics(ch, k.Kind, k.Name, k.PluginStatus)
		}
	}
	if c.d.vault != nil && c.d.vault.svc != nil {
		up := 0.0
		if c.d.vaultHealth(ctx).State == credentials.StateOK {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descVaultUp, prometheus.GaugeValue, up)
	}
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.d.bus.Dropped()))
	ch <- prometheus.MustNewConstMetric(descSubs, prometheus.GaugeValue, float64(c.d.bus.Subscribers()))
	if c.d.robots != nil {
		st := c.d.robots.Stats()
		ch <- prometheus.MustNewConstMetric(descParked, prometheus.GaugeValue, float64(st.Parked))
		ch <- prometheus.MustNewConstMetric(descWakes, prometheus.CounterValue, float64(st.Wakes))
		ch <- prometheus.MustNewConstMetric(descClaims, prometheus.CounterValue, float64(st.DBClaims), "db")
		ch <- prometheus.MustNewConstMetric(descClaims, prometheus.CounterValue, float64(st.SkippedClaims), "parked")
	}
	// Read after the scrape's own queries above, so a reader comparing two
	// scrapes sees each scrape's statements once, in the later one.
	st := c.d.db.Statements()
	for kind, v := range map[string]int64{"read": st.Read, "write": st.Write, "other": st.Other, "commit": st.Commit, "rollback": st.Rollback} {
		ch <- prometheus.MustNewConstMetric(descStatements, prometheus.CounterValue, float64(v), kind)
	}
}

func (c *collector) collectDB(ctx context.Context, ch chan<- prometheus.Metric) error {
	pools, err := c.d.db.Pool.Query().Where(pool.Active(true)).All(ctx)
	if err != nil {
		return err
	}
	names := map[int]string{}
	for _, p := range pools {
		names[p.ID] = p.Name
	}
	counts, err := monitor.CountPools(ctx, c.d.db.Client, true)
	if err != nil {
		return err
	}
	for id, pc := range counts {
		n, ok := names[id]
		if !ok {
			continue
		}
		for st, v := range map[task.State]int{task.StatePending: pc.Pending, task.StateRunning: pc.Running} {
			if v > 0 { // as before: a state without tasks has no series
				ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(v), n, string(st))
			}
		}
		for st, v := range pc.RobotsByState {
			ch <- prometheus.MustNewConstMetric(descRobots, prometheus.GaugeValue, float64(v), n, string(st))
		}
	}
	var open []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		Status   string `json:"status"`
		Count    int    `json:"count"`
	}
	if err := c.d.db.Anomaly.Query().Where(anomaly.StatusNEQ(anomaly.StatusResolved)).
		GroupBy(anomaly.FieldRule, anomaly.FieldSeverity, anomaly.FieldStatus).Aggregate(ent.Count()).Scan(ctx, &open); err != nil {
		return fmt.Errorf("count open anomalies: %w", err)
	}
	for _, a := range open {
		ch <- prometheus.MustNewConstMetric(descAnomalies, prometheus.GaugeValue, float64(a.Count), a.Rule, a.Severity, a.Status)
	}
	return nil
}

// pluginMetrics exports one supervised plugin's health and restarts.
func pluginMetrics(ch chan<- prometheus.Metric, kind, name string, st pluginhost.PluginStatus) {
	up := 0.0
	if st.Healthy {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(descPluginUp, prometheus.GaugeValue, up, kind, name, st.Plugin)
	ch <- prometheus.MustNewConstMetric(descPluginRestarts, prometheus.CounterValue, float64(st.Restarts), kind, name, st.Plugin)
}
