package trigger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/trigger/when"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/privacy"
	enttrigger "github.com/rpacloud/rpacloud/ent/trigger"
)

// Defaults of Options.
const (
	DefaultInterval = 15 * time.Second
	// DefaultOnTime is how late a run may start and still count as on
	// time rather than missed: a few passes, so that a slow pass or a
	// leader change of a few seconds fires the run, not the catch-up rule.
	DefaultOnTime = 2 * time.Minute
	// maxListed bounds the runs one pass lists for one trigger; the rest
	// are handled by the next passes. Above when.MaxCatchUp, so a full
	// list always has runs to skip.
	maxListed = 1000
	// maxListings bounds the lists of one trigger in one pass: 100 lists
	// of maxListed runs are 69 days of a minutely trigger.
	maxListings = 100
	// maxSkipEvents bounds the skipped-run events of one pass and trigger;
	// more are summed up in one more event.
	maxSkipEvents = 10
)

// Options configure a Service.
type Options struct {
	Client *ent.Client
	Queue  *dispatch.Queue
	Config config.Live
	Bus    *events.Bus
	Logger *slog.Logger
	// Now is the service's clock; default time.Now.
	Now func() time.Time
	// Interval between passes; default DefaultInterval.
	Interval time.Duration
	// OnTime: a run no older than this fires whatever the catch-up rule;
	// default DefaultOnTime.
	OnTime time.Duration
	// Wait waits for the next pass and returns false once ctx is done;
	// default a real timer. Tests drive it.
	Wait func(ctx context.Context, d time.Duration) bool
}

// Service fires triggers. Run it as a leader-only lease.Service.
type Service struct{ o Options }

// New returns a service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.OnTime <= 0 {
		o.OnTime = DefaultOnTime
	}
	if o.Wait == nil {
		o.Wait = retry.Sleep
	}
	return &Service{o: o}
}

// Run passes over the triggers every Interval until ctx ends (the
// lease.Service signature; the term is not needed: the fences above
// hold across terms).
func (s *Service) Run(ctx context.Context, _ int64) {
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("triggers", "err", err)
		}
		if !s.o.Wait(ctx, s.o.Interval) {
			return
		}
	}
}

func system(ctx context.Context) context.Context {
	return privacy.DecisionContext(ctx, privacy.Allow)
}

// Tick handles every trigger's due runs once. An error of one trigger
// does not stop the others; the errors are joined.
func (s *Service) Tick(ctx context.Context) error {
	ctx = system(ctx)
	cfg := s.o.Config.Current()
	now := s.o.Now().UTC()
	var errs []error
	for _, t := range cfg.Triggers {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A list cut at maxListed runs (a long outage) is handled list
		// after list in this pass, so that the runs due now are reached
		// while they are on time, not passes later.
		for range maxListings {
			more, err := s.handle(ctx, t, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("trigger %q: %w", t.Name, err))
			}
			if err != nil || !more || ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}

// subject is what a trigger's events name: its customer, process and pool.
type subject struct {
	row      *ent.Trigger
	poolID   int
	paused   string // why nothing fires now; "" when nothing is paused
	inactive bool
}

func (s *Service) subject(ctx context.Context, row *ent.Trigger) (subject, error) {
	sub := subject{row: row}
	p, err := s.o.Client.Process.Get(ctx, row.ProcessID)
	if err != nil {
		return sub, fmt.Errorf("process: %w", err)
	}
	pl, err := s.o.Client.Pool.Get(ctx, p.PoolID)
	if err != nil {
		return sub, fmt.Errorf("pool: %w", err)
	}
	sub.poolID = pl.ID
	sub.inactive = !p.Active || !pl.Active
	switch {
	case row.PausedAt != nil:
		sub.paused = "the trigger is paused" + by(row.PausedBy, row.PauseReason)
	case p.PausedAt != nil && p.OwnerID != nil:
		sub.paused = fmt.Sprintf("process %q is paused", p.Name) + by(p.PausedBy, p.PauseReason)
	case p.PausedAt != nil:
		// A shared process, like a pool, serves several departments: who
		// paused it and why is not every department's to read (the
		// reason is free text); the event goes to the trigger's.
		sub.paused = fmt.Sprintf("process %q is paused", p.Name)
	case pl.PausedAt != nil:
		sub.paused = fmt.Sprintf("pool %q is paused", pl.Name)
	}
	return sub, nil
}

func by(who, why *string) string {
	out := ""
	if who != nil && *who != "" {
		out += " by " + *who
	}
	if why != nil && *why != "" {
		out += ": " + *why
	}
	return out
}

// SkipReasonPaused starts the reason of a run skipped because an
// operator paused it: such a run is no anomaly (core/monitor).
const SkipReasonPaused = "paused"

// PausedSkip is how the trigger.skipped event of t's run at at begins when
// an operator's pause skipped it; core/monitor looks for it.
func PausedSkip(t config.Trigger, at time.Time) string {
	return skipMessage(t, at, SkipReasonPaused)
}

func skipMessage(t config.Trigger, at time.Time, reason string) string {
	return fmt.Sprintf("trigger %q: run of %s skipped: %s", t.Name, runName(t, at), reason)
}

// handle handles the due runs of t listed at now, at most maxListed; more
// says the list was cut and this pass should list again.
func (s *Service) handle(ctx context.Context, t config.Trigger, now time.Time) (more bool, err error) {
	row, err := s.o.Client.Trigger.Query().Where(enttrigger.Name(t.Name), enttrigger.Active(true)).Only(ctx)
	if ent.IsNotFound(err) {
		return false, nil // not synced yet
	}
	if err != nil {
		return false, fmt.Errorf("read: %w", err)
	}
	if row.LastScheduledFor == nil {
		// First seen by a leader: its schedule starts now. Nothing before
		// it was ever due.
		_, err := s.advance(ctx, row, now)
		return false, err
	}
	last := *row.LastScheduledFor
	due, more := t.Schedule().Runs(last, now, maxListed)
	if len(due) == 0 {
		return false, nil
	}
	sub, err := s.subject(ctx, row)
	if err != nil {
		return false, err
	}
	var d when.Decision
	reason := ""
	switch {
	case sub.paused != "":
		d.Skip, reason = due, SkipReasonPaused+": "+sub.paused
	case sub.inactive:
		d.Skip, reason = due, "its process or pool left the configuration"
	case more:
		// Runs beyond the list are later still: the listed ones were
		// missed and none is the latest. All but the last MaxCatchUp are
		// skipped whatever the rule; the next listing (Tick lists again in
		// the same pass) holds the rest, the
		// latest runs among them, and the rule decides on those.
		d.Skip, reason = due[:len(due)-when.MaxCatchUp], "missed while no daemon led (catch_up = "+string(t.Rule())+", older than the latest runs)"
		due = d.Skip
	default:
		d = when.Decide(t.Rule(), due, now, s.o.OnTime)
		reason = "missed while no daemon led (catch_up = " + string(t.Rule()) + ")"
	}
	var refused []time.Time
	refusal := ""
	for _, at := range d.Fire {
		if err := s.fire(ctx, t, row, at, "scheduled run"); err != nil {
			if errors.Is(err, dispatch.ErrBadInput) {
				// The queue refuses the run for good (e.g. the process is
				// no longer the customer's): record it instead of trying
				// again at every pass.
				refused, refusal = append(refused, at), "refused: "+err.Error()
				continue
			}
			return false, err
		}
	}
	won, err := s.advance(ctx, row, due[len(due)-1])
	if err != nil || !won {
		return false, err // another leader handled these runs
	}
	skip, err := s.unfired(ctx, row, d.Skip)
	if err != nil {
		return false, err
	}
	// A cut list's runs are old: one event sums them up, so a pass that
	// lists many times records a bounded number of events.
	each := maxSkipEvents
	if more {
		each = 0
	}
	return more, errors.Join(s.recordSkips(ctx, t, sub, skip, reason, each), s.recordSkips(ctx, t, sub, refused, refusal, maxSkipEvents))
}

// unfired drops from runs those that have their batch: a leader that
// fired them and stopped before it advanced the row (a crash, or two
// leaders during a failover) left them due, and they were not skipped.
func (s *Service) unfired(ctx context.Context, row *ent.Trigger, runs []time.Time) ([]time.Time, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	fired := map[time.Time]bool{}
	// In chunks: a list holds up to maxListed runs, more than some
	// databases bind in one statement.
	const chunk = 500
	for start := 0; start < len(runs); start += chunk {
		part := runs[start:min(start+chunk, len(runs))]
		utc := make([]time.Time, len(part))
		for i, r := range part {
			utc[i] = r.UTC()
		}
		bs, err := s.o.Client.Batch.Query().Where(batch.TriggerID(row.ID), batch.ScheduledForIn(utc...)).
			Select(batch.FieldScheduledFor).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("fired runs: %w", err)
		}
		for _, b := range bs {
			if b.ScheduledFor != nil {
				fired[b.ScheduledFor.UTC()] = true
			}
		}
	}
	if len(fired) == 0 {
		return runs, nil
	}
	out := make([]time.Time, 0, len(runs))
	for _, r := range runs {
		if !fired[r.UTC()] {
			out = append(out, r)
		}
	}
	return out, nil
}

// advance moves the row's last scheduled run from what it read to to,
// by compare-and-set; false when another pass moved it first.
func (s *Service) advance(ctx context.Context, row *ent.Trigger, to time.Time) (bool, error) {
	q := s.o.Client.Trigger.Update().Where(enttrigger.ID(row.ID))
	if row.LastScheduledFor == nil {
		q = q.Where(enttrigger.LastScheduledForIsNil())
	} else {
		q = q.Where(enttrigger.LastScheduledFor(*row.LastScheduledFor))
	}
	n, err := q.SetLastScheduledFor(to.UTC()).Save(ctx)
	if err != nil {
		return false, fmt.Errorf("advance: %w", err)
	}
	return n == 1, nil
}

func runName(t config.Trigger, at time.Time) string {
	return at.In(t.Location()).Format("2006-01-02 15:04 MST")
}

func (s *Service) fire(ctx context.Context, t config.Trigger, row *ent.Trigger, at time.Time, what string) error {
	inputs, err := t.InputsAt(at)
	if err != nil {
		return fmt.Errorf("%w: %v", dispatch.ErrBadInput, err)
	}
	label := t.Label
	if label == "" {
		label = "trigger " + t.Name
	}
	at = at.UTC()
	_, err = s.o.Queue.Submit(ctx, dispatch.SubmitRequest{
		CustomerID: row.CustomerID, Process: t.Process, Label: label, Inputs: inputs,
		SubmittedBy: "trigger/" + t.Name, TriggerID: &row.ID, ScheduledFor: &at,
		FiredBy: fmt.Sprintf("trigger %q: %s of %s", t.Name, what, runName(t, at)),
	})
	if errors.Is(err, dispatch.ErrAlreadySubmitted) {
		return nil
	}
	return err
}

// recordSkips records the first each skipped runs one event apiece and
// the rest in one more event.
func (s *Service) recordSkips(ctx context.Context, t config.Trigger, sub subject, skip []time.Time, reason string, each int) error {
	if len(skip) == 0 {
		return nil
	}
	when := s.o.Now().UTC()
	var evs []*ent.EventCreate
	for i, at := range skip {
		msg := skipMessage(t, at, reason)
		if i == each {
			more := "more "
			if i == 0 {
				more = ""
			}
			msg = fmt.Sprintf("trigger %q: %d %sruns from %s to %s skipped: %s", t.Name, len(skip)-i, more, runName(t, at), runName(t, skip[len(skip)-1]), reason)
		}
		evs = append(evs, events.Create(s.o.Client.Event, events.TriggerSkipped, when).
			SetCustomerID(sub.row.CustomerID).SetProcessID(sub.row.ProcessID).SetPoolID(sub.poolID).SetMessage(msg))
		if i == each {
			break
		}
	}
	stored, err := s.o.Client.Event.CreateBulk(evs...).Save(ctx)
	if err != nil {
		return fmt.Errorf("record skipped runs: %w", err)
	}
	s.o.Bus.Publish(stored...)
	return nil
}

// ErrUnknown: no trigger of that name that the caller may see; the API
// answers it exactly like a forbidden one.
var ErrUnknown = errors.New("no such trigger")

// lookup finds an active trigger the caller (ctx's principal) may see,
// and its definition.
func (s *Service) lookup(ctx context.Context, name string) (*ent.Trigger, config.Trigger, error) {
	var def config.Trigger
	found := false
	for _, t := range s.o.Config.Current().Triggers {
		if t.Name == name {
			def, found = t, true
		}
	}
	row, err := s.o.Client.Trigger.Query().Where(enttrigger.Name(name), enttrigger.Active(true)).Only(ctx)
	if ent.IsNotFound(err) || errors.Is(err, privacy.Deny) || (err == nil && !found) {
		return nil, def, fmt.Errorf("trigger %q: %w", name, ErrUnknown)
	}
	if err != nil {
		return nil, def, fmt.Errorf("trigger %q: %w", name, err)
	}
	return row, def, nil
}

// FireNow submits one run of the trigger at the current time, outside
// its schedule and catch-up, for by. ctx carries the caller: a trigger it
// may not see is ErrUnknown.
func (s *Service) FireNow(ctx context.Context, name, by string) (*ent.Batch, error) {
	row, t, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	inputs, err := t.InputsAt(s.o.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", dispatch.ErrBadInput, err)
	}
	at := s.o.Now().UTC()
	label := t.Label
	if label == "" {
		label = "trigger " + t.Name
	}
	return s.o.Queue.Submit(ctx, dispatch.SubmitRequest{
		CustomerID: row.CustomerID, Process: t.Process, Label: label, Inputs: inputs,
		SubmittedBy: by, TriggerID: &row.ID, ScheduledFor: &at,
		FiredBy: fmt.Sprintf("trigger %q: fired now by %s", t.Name, by),
	})
}

// MaxReasonBytes bounds a pause's reason (the column's size).
const MaxReasonBytes = 512

// SetPaused pauses (reason kept) or resumes the trigger for by. Pausing a
// paused trigger or resuming a running one changes nothing and records
// nothing.
func (s *Service) SetPaused(ctx context.Context, name string, pause bool, by, reason string) (*ent.Trigger, error) {
	if len(reason) > MaxReasonBytes {
		return nil, fmt.Errorf("%w: the reason is %d bytes, at most %d", dispatch.ErrBadInput, len(reason), MaxReasonBytes)
	}
	row, _, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if (row.PausedAt != nil) == pause {
		return row, nil
	}
	sys := system(ctx)
	now := s.o.Now().UTC()
	// Compare-and-set on the pause: of two requests at once, one changes
	// the row and records the event; the other finds it done.
	upd := s.o.Client.Trigger.Update().Where(enttrigger.ID(row.ID))
	typ, msg := events.TriggerResumed, fmt.Sprintf("trigger %q resumed by %s", name, by)
	if pause {
		upd.Where(enttrigger.PausedAtIsNil()).SetPausedAt(now).SetPausedBy(by).SetPauseReason(reason)
		typ, msg = events.TriggerPaused, fmt.Sprintf("trigger %q paused by %s", name, by)
		if reason != "" {
			msg += ": " + reason
		}
	} else {
		upd.Where(enttrigger.PausedAtNotNil()).ClearPausedAt().ClearPausedBy().ClearPauseReason()
	}
	n, err := upd.Save(sys)
	if err != nil {
		return nil, fmt.Errorf("trigger %q: %w", name, err)
	}
	out, err := s.o.Client.Trigger.Get(sys, row.ID)
	if err != nil {
		return nil, fmt.Errorf("trigger %q: %w", name, err)
	}
	if n == 0 {
		return out, nil // another request changed it first
	}
	p, err := s.o.Client.Process.Get(sys, row.ProcessID)
	if err != nil {
		return nil, fmt.Errorf("trigger %q: process: %w", name, err)
	}
	_, err = events.Record(sys, events.Create(s.o.Client.Event, typ, now).SetCustomerID(row.CustomerID).
		SetProcessID(row.ProcessID).SetPoolID(p.PoolID).SetMessage(msg), s.o.Bus)
	return out, err
}

// Definition is the named trigger in the running configuration; false
// when it has none of that name.
func (s *Service) Definition(name string) (config.Trigger, bool) {
	for _, t := range s.o.Config.Current().Triggers {
		if t.Name == name {
			return t, true
		}
	}
	return config.Trigger{}, false
}

// MaxNextRuns bounds NextRuns.
const MaxNextRuns = 100

// NextRuns are the next n (at most MaxNextRuns) runs of the named trigger
// after now, per the running configuration; none for a trigger it has
// not.
func (s *Service) NextRuns(name string, n int) []time.Time {
	return NextRuns(s.o.Config.Current(), name, s.o.Now(), n)
}

// NextRuns are the next n (at most MaxNextRuns) runs of the named trigger
// after from, per cfg.
func NextRuns(cfg *config.Config, name string, from time.Time, n int) []time.Time {
	n = max(0, min(n, MaxNextRuns))
	for _, t := range cfg.Triggers {
		if t.Name != name {
			continue
		}
		var out []time.Time
		for at := t.Schedule().Next(from); !at.IsZero() && len(out) < n; at = t.Schedule().Next(at) {
			out = append(out, at)
		}
		return out
	}
	return nil
}
