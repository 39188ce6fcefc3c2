package config

import (
	"net/url"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/monitor/rules"
)

// Monitor tunes anomaly detection and notification (core/monitor). Every
// attribute is optional; zero values mean the monitor's defaults.
type Monitor struct {
	HeartbeatTimeout time.Duration // a robot silent for longer has lost its heartbeat; default 60s
	HungGrace        time.Duration // added to a run's max_duration before it counts as hung; default 30s
	ScheduleGrace    time.Duration // how late a scheduled run may start; default 5m
	FailureMinRuns   int           // runs needed before a failure rate is judged; default 10
	FailureJump      int           // rise of the failure rate over its baseline, in percentage points; default 25
	DataErrorPercent int           // share of a process's runs in the last hour ending with a data error that raises one anomaly; default 20
	QueueSamples     int           // consecutive samples of a growing queue at max; default 4
	StuckAfter       time.Duration // work waiting in a pool where nothing happens for longer is stuck; default 15m
	PausedAfter      time.Duration // a pool or process paused for longer with work waiting is reported; default 4h
	Interval         time.Duration // between two evaluations of the rules; default 2s
	SampleInterval   time.Duration // between two pool samples; default 10s
	Webhook          *MonitorWebhook
	DeclRange        hcl.Range
}

// MonitorWebhook receives anomaly changes as JSON POSTs.
type MonitorWebhook struct {
	URL         string
	MinSeverity string // "info" (default), "warning" or "critical"
}

var (
	monitorSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "heartbeat_timeout"}, {Name: "hung_grace"}, {Name: "schedule_grace"}, {Name: "failure_min_runs"},
			{Name: "failure_jump_percent"}, {Name: "queue_samples"}, {Name: "interval"}, {Name: "sample_interval"},
			{Name: "stuck_after"}, {Name: "paused_after"}, {Name: "data_error_percent"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "webhook"}},
	}
	webhookSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "min_severity"}}}
)

func (l *loader) decodeMonitor(b *hcl.Block) {
	first := l.single(b, &l.monitor)
	c := l.content(b.Body, monitorSchema)
	a := l.attrs(c.Attributes)
	m := Monitor{DeclRange: b.DefRange}
	a.dur("heartbeat_timeout", &m.HeartbeatTimeout)
	a.dur("hung_grace", &m.HungGrace)
	a.dur("schedule_grace", &m.ScheduleGrace)
	a.dur("interval", &m.Interval)
	a.dur("sample_interval", &m.SampleInterval)
	a.dur("stuck_after", &m.StuckAfter)
	a.dur("paused_after", &m.PausedAfter)
	for name, dst := range map[string]*int{"failure_min_runs": &m.FailureMinRuns, "failure_jump_percent": &m.FailureJump, "queue_samples": &m.QueueSamples, "data_error_percent": &m.DataErrorPercent} {
		if at := a.int(name, dst); at != nil && *dst < 0 {
			a.errorf(at.Expr.Range(), "Invalid "+name, "%s = %d; it must not be negative.", name, *dst)
		}
	}
	if at, ok := c.Attributes["failure_jump_percent"]; ok && m.FailureJump > 100 {
		a.errorf(at.Expr.Range(), "Invalid failure_jump_percent", "failure_jump_percent = %d; it is a rise in percentage points, at most 100.", m.FailureJump)
	}
	if at, ok := c.Attributes["data_error_percent"]; ok && m.DataErrorPercent > 100 {
		a.errorf(at.Expr.Range(), "Invalid data_error_percent", "data_error_percent = %d; it is a share of runs in percent, at most 100.", m.DataErrorPercent)
	}
	if at, ok := c.Attributes["queue_samples"]; ok && m.QueueSamples == 1 {
		a.errorf(at.Expr.Range(), "Invalid queue_samples", "queue_samples = 1; growth needs at least 2 samples.")
	}
	for i, wb := range c.Blocks {
		if i > 0 {
			a.errorf(wb.DefRange, "Duplicate webhook block", "A monitor block has at most one webhook block.")
			continue
		}
		wc := l.content(wb.Body, webhookSchema)
		wa := l.attrs(wc.Attributes)
		w := &MonitorWebhook{}
		if at := wa.str("url", &w.URL); at != nil {
			if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				// The URL is not echoed: it may carry a token.
				wa.errorf(at.Expr.Range(), "Invalid webhook url", "url must be an absolute http or https URL.")
			}
		}
		if at := wa.str("min_severity", &w.MinSeverity); at != nil {
			wa.oneOf(at, "min_severity", w.MinSeverity, rules.SeverityNames()...)
		}
		m.Webhook = w
	}
	if first {
		l.cfg.Monitor = m
	}
}
