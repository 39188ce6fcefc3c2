// Package metrics holds the counters and histograms a daemon keeps of the
// work it did itself: tasks and attempts it finished, claims it served,
// scaling decisions it took, its calls to Vault. Each daemon exports its
// own and Prometheus sums them across daemons; what every daemon would
// report alike (queue depth, robots by state, open anomalies) is read from
// the database at scrape time instead (cmd/rpacloud/daemon/metrics.go).
//
// Labels are bounded by configuration (pool, process, outcome, action):
// never a task, robot or customer id, so the number of series stays that
// of the configuration whatever the traffic. A nil *Metrics records
// nothing, so packages and tests that do not export metrics pass nil.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are one daemon's own counters and histograms.
type Metrics struct {
	TasksFinished  *prometheus.CounterVec
	AttemptsEnded  *prometheus.CounterVec
	ClaimSeconds   *prometheus.HistogramVec
	QueueWait      *prometheus.HistogramVec
	TaskDuration   *prometheus.HistogramVec
	ScaleDecisions *prometheus.CounterVec
	VaultRequests  *prometheus.CounterVec
	VaultLastOK    prometheus.Gauge
	RowsPruned     *prometheus.CounterVec
}

// Unknown is the label of a pool or process whose name could not be read;
// the count is kept rather than lost.
const Unknown = "unknown"

// Buckets in seconds. Claims are milliseconds (a long-poll's wait is not
// counted, only the claim's own work); waits and durations span seconds to
// hours, like the processes' max_wait and max_duration.
var (
	claimBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	longBuckets  = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400}
)

// New makes the metrics; register them with Collectors.
func New() *Metrics {
	return &Metrics{
		TasksFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpacloud_tasks_finished_total",
			Help: "Tasks this daemon ended, by pool, process and outcome (succeeded, data_error, retries_exhausted, timeout_exhausted, expired, cancelled).",
		}, []string{"pool", "process", "outcome"}),
		AttemptsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpacloud_attempts_finished_total",
			Help: "Attempts this daemon ended, by pool, process and outcome (succeeded, failed, stopped, abandoned).",
		}, []string{"pool", "process", "outcome"}),
		ClaimSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rpacloud_claim_duration_seconds",
			Help:    "Time this daemon took to answer a robot's claim (its database work, not a long-poll's wait), by pool and result (task, none).",
			Buckets: claimBuckets,
		}, []string{"pool", "result"}),
		QueueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rpacloud_task_queue_wait_seconds",
			Help:    "Time from a task's submission (or an operator's requeue) to its first dispatch, by pool and process.",
			Buckets: longBuckets,
		}, []string{"pool", "process"}),
		TaskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rpacloud_task_duration_seconds",
			Help:    "Time from a task's submission (or an operator's requeue) to its end, queue wait and retries included, by pool, process and outcome.",
			Buckets: longBuckets,
		}, []string{"pool", "process", "outcome"}),
		ScaleDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpacloud_scale_decisions_total",
			Help: "Elastic scaling decisions this daemon took as leader, by pool and action (scale_up, scale_down, none, cooldown).",
		}, []string{"pool", "action"}),
		VaultRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpacloud_vault_requests_total",
			Help: "Requests this daemon sent to Vault, by result: ok (answered below 500, refusals included), error (no answer, or a 5xx such as sealed).",
		}, []string{"result"}),
		VaultLastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rpacloud_vault_last_success_timestamp_seconds",
			Help: "Unix time of this daemon's last request Vault answered below 500; 0 before the first.",
		}),
		RowsPruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rpacloud_rows_pruned_total",
			Help: "Rows this daemon deleted as leader because their retention ran out, by kind (events, attempts, tasks, batches, anomalies, audit).",
		}, []string{"kind"}),
	}
}

// Collectors lists every metric, for a registry.
func (m *Metrics) Collectors() []prometheus.Collector {
	if m == nil {
		return nil
	}
	return []prometheus.Collector{m.TasksFinished, m.AttemptsEnded, m.ClaimSeconds, m.QueueWait, m.TaskDuration,
		m.ScaleDecisions, m.VaultRequests, m.VaultLastOK, m.RowsPruned}
}

func name(s string) string {
	if s == "" {
		return Unknown
	}
	return s
}

// TaskFinished counts a task that ended with outcome after lasting d.
func (m *Metrics) TaskFinished(pool, process, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.TasksFinished.WithLabelValues(name(pool), name(process), outcome).Inc()
	m.TaskDuration.WithLabelValues(name(pool), name(process), outcome).Observe(max(d, 0).Seconds())
}

// AttemptEnded counts an attempt that ended with outcome.
func (m *Metrics) AttemptEnded(pool, process, outcome string) {
	if m == nil {
		return
	}
	m.AttemptsEnded.WithLabelValues(name(pool), name(process), outcome).Inc()
}

// Claimed observes one claim's duration; got says whether it handed out a
// task.
func (m *Metrics) Claimed(pool string, d time.Duration, got bool) {
	if m == nil {
		return
	}
	result := "none"
	if got {
		result = "task"
	}
	m.ClaimSeconds.WithLabelValues(name(pool), result).Observe(d.Seconds())
}

// FirstDispatch observes a task's wait from submission to its first
// dispatch.
func (m *Metrics) FirstDispatch(pool, process string, wait time.Duration) {
	if m == nil {
		return
	}
	m.QueueWait.WithLabelValues(name(pool), name(process)).Observe(max(wait, 0).Seconds())
}

// ScaleDecision counts one decision of the scaler.
func (m *Metrics) ScaleDecision(pool, action string) {
	if m == nil {
		return
	}
	m.ScaleDecisions.WithLabelValues(name(pool), action).Inc()
}

// VaultCall counts one request to Vault; ok when Vault answered (below
// 500) at time at.
func (m *Metrics) VaultCall(ok bool, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.VaultRequests.WithLabelValues("error").Inc()
		return
	}
	m.VaultRequests.WithLabelValues("ok").Inc()
	m.VaultLastOK.Set(float64(at.UnixNano()) / 1e9)
}

// Pruned counts n rows of kind deleted by the retention pruner.
func (m *Metrics) Pruned(kind string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.RowsPruned.WithLabelValues(kind).Add(float64(n))
}
