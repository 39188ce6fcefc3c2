package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Retention says how long the leader keeps what grows with every run
// (core/retention prunes it). A zero duration keeps the kind forever
// ("forever" in HCL). Without a retention block nothing is pruned: an
// upgrade from a release that kept everything must not start deleting
// history before the operator says how much to keep; `retention {}` gives
// the defaults. Robots' artefacts are kept on the robot's host and
// pruned by the agent, not configured here.
type Retention struct {
	Events        time.Duration // events, by their time; default 30 days
	Attempts      time.Duration // finished attempts of finished batches, by their end; default 90 days
	FinishedTasks time.Duration // finished tasks of finished batches, then the empty batches, by their end; default 90 days
	Anomalies     time.Duration // resolved anomalies, by their resolution; default 90 days
	Audit         time.Duration // audit entries, by their time; default forever
	Interval      time.Duration // between two pruning rounds; default 10 minutes
	Set           bool          // a retention block was written; false: everything is kept
	DeclRange     hcl.Range
}

// Retention defaults of a retention block: long enough to investigate
// last quarter's runs, short enough that the database of a busy fleet
// stops growing. The audit trail
// is kept until an operator decides otherwise: it is evidence.
const (
	Day                           = 24 * time.Hour
	DefaultRetentionEvents        = 30 * Day
	DefaultRetentionAttempts      = 90 * Day
	DefaultRetentionFinishedTasks = 90 * Day
	DefaultRetentionAnomalies     = 90 * Day
	DefaultRetentionAudit         = time.Duration(0) // forever
	DefaultRetentionInterval      = 10 * time.Minute
	// MinRetention refuses a retention so short that rows would vanish
	// while someone is still looking at the run they belong to.
	MinRetention = time.Hour
)

func defaultRetention() Retention {
	return Retention{
		Events: DefaultRetentionEvents, Attempts: DefaultRetentionAttempts, FinishedTasks: DefaultRetentionFinishedTasks,
		Anomalies: DefaultRetentionAnomalies, Audit: DefaultRetentionAudit, Interval: DefaultRetentionInterval, Set: true,
	}
}

// noRetention is a configuration without a retention block: every kind
// kept forever.
func noRetention() Retention { return Retention{Interval: DefaultRetentionInterval} }

var retentionSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
	{Name: "events"}, {Name: "attempts"}, {Name: "finished_tasks"}, {Name: "anomalies"}, {Name: "audit"}, {Name: "interval"},
}}

func (l *loader) decodeRetention(b *hcl.Block) {
	first := l.single(b, &l.retention)
	c := l.content(b.Body, retentionSchema)
	a := l.attrs(c.Attributes)
	r := defaultRetention()
	r.DeclRange = b.DefRange
	a.keep("events", &r.Events)
	a.keep("attempts", &r.Attempts)
	a.keep("finished_tasks", &r.FinishedTasks)
	a.keep("anomalies", &r.Anomalies)
	a.keep("audit", &r.Audit)
	if at := a.dur("interval", &r.Interval); at != nil && (r.Interval < 10*time.Second || r.Interval > Day) {
		a.errorf(at.Expr.Range(), "Invalid interval", "interval = %q; a pruning round every 10s to 24h.", r.Interval)
	}
	if first {
		l.cfg.Retention = r
	}
}

// keep decodes a retention: "forever", whole days ("90d") or a Go
// duration ("2160h"), at least MinRetention.
func (a attrs) keep(name string, dst *time.Duration) *hcl.Attribute {
	var s string
	at := a.str(name, &s)
	if at == nil {
		return nil
	}
	d, err := ParseRetention(s)
	if err != nil {
		a.errorf(at.Expr.Range(), "Invalid retention", "%s = %q: %v.", name, s, err)
		return nil
	}
	*dst = d
	return at
}

// ParseRetention reads a retention as HCL writes it: "forever" (0),
// whole days ("30d") or a Go duration ("720h"), at least MinRetention.
func ParseRetention(s string) (time.Duration, error) {
	if s == "forever" {
		return 0, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100*365 {
			return 0, fmt.Errorf("write whole days (\"30d\", at most 36500d), a duration (\"720h\") or \"forever\"")
		}
		d = time.Duration(days) * Day
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("write whole days (\"30d\"), a duration (\"720h\") or \"forever\"")
		}
	}
	if d < MinRetention {
		return 0, fmt.Errorf("it must be at least %s (write \"forever\" to keep everything)", MinRetention)
	}
	return d, nil
}

// retentionDefault reports a retention block that changes nothing (or
// none written), so `config plan` shows no retention block then.
func retentionDefault(r Retention) bool {
	r.DeclRange = hcl.Range{}
	return r == noRetention()
}
