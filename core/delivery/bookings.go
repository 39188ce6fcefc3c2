package delivery

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/schedule"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/booking"
	"github.com/rpacloud/rpacloud/ent/customer"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/process"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Horizon is how far ahead a new booking is checked for clashes: eight
// weeks cover every weekly pattern and two month ends.
const Horizon = 8 * 7 * 24 * time.Hour

// VisibleBookings is the run schedule as p may see it: the bookings of
// processes p may see, made by p's own customer (or, for a shared
// process, by nobody in particular). Other departments' bookings are
// theirs to know; they still count in clash checks and capacity.
func (s *Service) VisibleBookings(ctx context.Context, p viewer.Principal, poolName string) ([]schedule.Booking, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	all, err := s.Bookings(ctx, poolName)
	if err != nil {
		return nil, err
	}
	seen := s.bookingFilter(ctx, p)
	out := all[:0]
	for _, b := range all {
		if seen(b) {
			out = append(out, b)
		}
	}
	return out, nil
}

// bookingFilter returns whether p may see a booking.
func (s *Service) bookingFilter(ctx context.Context, p viewer.Principal) func(schedule.Booking) bool {
	if vis, _ := p.Visibility(); vis == viewer.SeesAll {
		return func(schedule.Booking) bool { return true }
	}
	// One answer per process and department: a schedule repeats them, and
	// each answer costs lookups. A lookup that fails hides the booking
	// (closed, never open).
	type key struct{ process, department string }
	seen := map[key]bool{}
	return func(b schedule.Booking) bool {
		k := key{b.Process, b.Department}
		v, ok := seen[k]
		if !ok {
			proc, err := s.Client.Process.Query().Where(process.Name(b.Process)).Only(sys(ctx))
			v = err == nil && s.bookingVisible(ctx, p, proc, b.Department)
			seen[k] = v
		}
		return v
	}
}

// bookingVisible: a booking is seen by whoever sees its process and
// belongs to the department that made it.
func (s *Service) bookingVisible(ctx context.Context, p viewer.Principal, proc *ent.Process, department string) bool {
	if !s.visible(ctx, p, proc) {
		return false
	}
	vis, cid := p.Visibility()
	if vis == viewer.SeesAll || department == "" {
		return true
	}
	if vis == viewer.SeesShared {
		return false
	}
	c, err := s.Client.Customer.Query().Where(customer.Name(department)).Only(sys(ctx))
	return err == nil && s.seesCustomer(ctx, cid, c.ID)
}

// Bookings returns the run schedule: the HCL schedule blocks of every
// process, then the API bookings, optionally of one pool only. It is the
// daemon's whole view, for clash checks; people get VisibleBookings.
func (s *Service) Bookings(ctx context.Context, poolName string) ([]schedule.Booking, error) {
	var out []schedule.Booking
	if s.config() != nil {
		for _, p := range s.config().Processes {
			for _, sc := range p.Schedules {
				if poolName != "" && p.Pool != poolName {
					continue
				}
				out = append(out, schedule.Booking{
					ID: p.Name + "/" + sc.Name, Process: p.Name, Department: p.Owner, Pool: p.Pool,
					Robot: sc.Robot, Robots: sc.Robots, Cron: sc.Cron, Duration: sc.Duration, Timezone: sc.Timezone,
				})
			}
		}
	}
	q := s.Client.Booking.Query().Order(ent.Asc(booking.FieldKey))
	if poolName != "" {
		q = q.Where(booking.Pool(poolName))
	}
	rows, err := q.All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("bookings: %w", err)
	}
	for _, r := range rows {
		b, err := s.bookingOf(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (s *Service) bookingOf(ctx context.Context, r *ent.Booking) (schedule.Booking, error) {
	proc, err := s.Client.Process.Get(sys(ctx), r.ProcessID)
	if err != nil {
		return schedule.Booking{}, fmt.Errorf("booking %s: process: %w", r.Key, err)
	}
	b := schedule.Booking{
		ID: r.Key, Process: proc.Name, Department: r.Department, Pool: r.Pool, Robot: r.Robot, Robots: r.Robots,
		Cron: r.Cron, Duration: time.Duration(r.DurationSeconds) * time.Second, Timezone: r.Timezone,
	}
	if r.ValidFrom != nil {
		b.From = *r.ValidFrom
	}
	if r.ValidUntil != nil {
		b.Until = *r.ValidUntil
	}
	return b, nil
}

// Pools returns every active pool's capacity for clash detection.
func (s *Service) Pools(ctx context.Context) ([]schedule.Pool, error) {
	ps, err := s.Client.Pool.Query().Where(pool.Active(true)).Order(ent.Asc(pool.FieldName)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("pools: %w", err)
	}
	out := make([]schedule.Pool, len(ps))
	for i, p := range ps {
		out[i] = schedule.Pool{Name: p.Name, Max: p.Max}
	}
	return out, nil
}

// BookRequest asks for a recurring slot.
type BookRequest struct {
	Process    string
	Slot       string // name, unique within the process
	Department string // customer name; default the process's owner
	Robot      string
	Robots     int
	Cron       string
	Duration   time.Duration
	Timezone   string
	From, To   time.Time
	// AcceptClash books despite clashes, which the schedule then flags;
	// without it a clash refuses the booking.
	AcceptClash bool
}

// ClashError refuses a booking that clashes.
type ClashError struct {
	Booking string
	Clashes []schedule.Clash
}

func (e *ClashError) Error() string {
	sum := schedule.Summarise(e.Clashes)
	msg := fmt.Sprintf("booking %s clashes %d times in the next %d weeks", e.Booking, len(e.Clashes), int(Horizon.Hours()/24/7))
	for i, c := range sum {
		if i == 3 {
			msg += fmt.Sprintf("; and %d more", len(sum)-3)
			break
		}
		msg += fmt.Sprintf("; %s with %v %d× from %s", c.Kind, c.Bookings, c.Count, c.First.Format(time.RFC3339))
	}
	return msg + " (book another time, or accept the clash explicitly)"
}

// Book adds an API booking after checking it against the whole schedule.
func (s *Service) Book(ctx context.Context, p viewer.Principal, req BookRequest) (schedule.Booking, []schedule.Clash, error) {
	proc, err := s.processByName(ctx, p, req.Process)
	if err != nil {
		return schedule.Booking{}, nil, err
	}
	if err := s.mayChange(ctx, p, proc); err != nil {
		return schedule.Booking{}, nil, err
	}
	audit.Scope(ctx, proc.OwnerID, "booking "+req.Process+"/"+req.Slot)
	if req.Department == "" && proc.OwnerID != nil {
		if c, err := s.Client.Customer.Get(sys(ctx), *proc.OwnerID); err == nil {
			req.Department = c.Name
		}
	}
	cand := schedule.Booking{
		ID: req.Process + "/" + req.Slot, Process: req.Process, Department: req.Department,
		Pool: proc.Edges.Pool.Name, Robot: req.Robot, Robots: req.Robots, Cron: req.Cron,
		Duration: req.Duration, Timezone: req.Timezone, From: req.From, Until: req.To,
	}
	if req.Slot == "" {
		return cand, nil, fmt.Errorf("%w: a booking needs a slot name", ErrBadInput)
	}
	if err := schedule.Validate([]schedule.Booking{cand}); err != nil {
		return cand, nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	existing, err := s.Bookings(ctx, "")
	if err != nil {
		return cand, nil, err
	}
	pools, err := s.Pools(ctx)
	if err != nil {
		return cand, nil, err
	}
	from := s.now()
	clashes, err := schedule.Admit(existing, cand, pools, from, from.Add(Horizon))
	if err != nil {
		return cand, nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if len(clashes) > 0 && !req.AcceptClash {
		return cand, clashes, &ClashError{Booking: cand.ID, Clashes: clashes}
	}
	create := s.Client.Booking.Create().SetKey(cand.ID).SetProcessID(proc.ID).SetPool(cand.Pool).
		SetDepartment(cand.Department).SetRobot(cand.Robot).SetRobots(max(cand.Robots, 1)).
		SetCron(cand.Cron).SetDurationSeconds(int(cand.Duration / time.Second)).SetTimezone(cand.Timezone).
		SetCreatedBy(p.Name).SetClashAccepted(len(clashes) > 0)
	if !cand.From.IsZero() {
		create.SetValidFrom(cand.From.UTC())
	}
	if !cand.Until.IsZero() {
		create.SetValidUntil(cand.Until.UTC())
	}
	if err := create.Exec(sys(ctx)); err != nil {
		if ent.IsConstraintError(err) {
			return cand, nil, fmt.Errorf("%w: booking %s exists", ErrBadInput, cand.ID)
		}
		return cand, nil, fmt.Errorf("book %s: %w", cand.ID, err)
	}
	return cand, clashes, nil
}

// Cancel removes an API booking (HCL ones are removed in HCL).
func (s *Service) Cancel(ctx context.Context, p viewer.Principal, key string) error {
	row, err := s.Client.Booking.Query().Where(booking.Key(key)).Only(sys(ctx))
	var proc *ent.Process
	if err == nil {
		proc, err = s.Client.Process.Query().Where(process.ID(row.ProcessID)).WithPool().Only(sys(ctx))
		if err == nil && !s.bookingVisible(ctx, p, proc, row.Department) {
			err = &ent.NotFoundError{} // another department's booking: as if missing
		}
	}
	if ent.IsNotFound(err) {
		return fmt.Errorf("%w: no API booking %q (slots declared in HCL are removed from the HCL)", ErrNotFound, key)
	}
	if err != nil {
		return fmt.Errorf("booking %q: %w", key, err)
	}
	if err := s.mayChange(ctx, p, proc); err != nil {
		return err
	}
	audit.Scope(ctx, proc.OwnerID, "booking "+key)
	return s.Client.Booking.DeleteOneID(row.ID).Exec(sys(ctx))
}

// Clashes lists the schedule's clashes in [from, to), of one pool or all.
func (s *Service) Clashes(ctx context.Context, p viewer.Principal, poolName string, from, to time.Time) ([]schedule.Clash, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	bs, err := s.Bookings(ctx, poolName)
	if err != nil {
		return nil, err
	}
	pools, err := s.Pools(ctx)
	if err != nil {
		return nil, err
	}
	cs, err := schedule.Clashes(bs, pools, from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Start.Before(cs[j].Start) })
	return s.redactClashes(ctx, p, bs, cs), nil
}

// OtherBooking stands for a booking of a department the caller may not
// see, in a clash that concerns the caller.
const OtherBooking = "(another department's booking)"

// redactClashes keeps the clashes that involve a booking p may see and
// names the others' bookings only as OtherBooking.
func (s *Service) redactClashes(ctx context.Context, p viewer.Principal, bs []schedule.Booking, cs []schedule.Clash) []schedule.Clash {
	if vis, _ := p.Visibility(); vis == viewer.SeesAll {
		return cs
	}
	seen := s.bookingFilter(ctx, p)
	mine := map[string]bool{}
	for _, b := range bs {
		if seen(b) {
			mine[b.ID] = true
		}
	}
	out := cs[:0]
	for _, c := range cs {
		ids, concerns := make([]string, 0, len(c.Bookings)), false
		for _, id := range c.Bookings {
			if mine[id] {
				concerns = true
				ids = append(ids, id)
			} else {
				ids = append(ids, OtherBooking)
			}
		}
		if concerns {
			c.Bookings = ids
			out = append(out, c)
		}
	}
	return out
}

// Capacity is a pool's booked and free robots over [from, to).
func (s *Service) Capacity(ctx context.Context, p viewer.Principal, poolName string, from, to time.Time) ([]schedule.Free, error) {
	if err := mayRead(p); err != nil {
		return nil, err
	}
	pl, err := s.poolByName(ctx, poolName)
	if err != nil {
		return nil, err
	}
	bs, err := s.Bookings(ctx, poolName)
	if err != nil {
		return nil, err
	}
	free, err := schedule.Capacity(bs, schedule.Pool{Name: pl.Name, Max: pl.Max}, from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	return free, nil
}
