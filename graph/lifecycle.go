package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/core/schedule"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph/model"
)

// Error code of a refused lifecycle transition or a clashing booking, and of
// a job-control request on a task or batch in the wrong state (stop a
// finished task, retry a running one).
const CodeRefused = "REFUSED"

func (r *Resolver) delivery(ctx context.Context) (*delivery.Service, viewer.Principal, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, p, err
	}
	if r.Delivery == nil {
		return nil, p, coded(CodeNotFound, "delivery features are not enabled on this daemon")
	}
	return r.Delivery, p, nil
}

// deliveryError maps the service's errors to coded GraphQL errors.
func deliveryError(err error) error {
	var re *lifecycle.RefusedError
	var ce *delivery.ClashError
	switch {
	case errors.As(err, &re), errors.As(err, &ce):
		return coded(CodeRefused, "%v", err)
	case errors.Is(err, delivery.ErrForbidden):
		return coded(CodeForbidden, "%v", err)
	case errors.Is(err, delivery.ErrNotFound):
		return coded(CodeNotFound, "%v", err)
	case errors.Is(err, delivery.ErrBadInput), errors.Is(err, delivery.ErrConflict):
		return coded(CodeBadInput, "%v", err)
	}
	return fmt.Errorf("%w", err)
}

func lifecycleModel(st *delivery.State) (*model.ProcessLifecycle, error) {
	out := &model.ProcessLifecycle{Process: st.Process, Stage: model.LifecycleStage(st.Stage)}
	for _, a := range st.Allowed {
		out.Allowed = append(out.Allowed, model.LifecycleAction(a))
	}
	for _, a := range []lifecycle.Action{lifecycle.PrepareVM, lifecycle.Develop, lifecycle.PassTrial} {
		for _, item := range lifecycle.RequiredItems(a, st.Require) {
			out.Checklist = append(out.Checklist, &model.ChecklistItem{Action: model.LifecycleAction(a), Item: item})
		}
	}
	for _, h := range st.History {
		ev, err := json.Marshal(h.Evidence)
		if err != nil {
			return nil, fmt.Errorf("evidence of step %d: %w", h.Seq, err)
		}
		out.History = append(out.History, &model.LifecycleStep{
			Seq: h.Seq, From: model.LifecycleStage(h.From), To: model.LifecycleStage(h.To), Action: model.LifecycleAction(h.Action),
			Actor: h.Evidence.Actor, At: h.Evidence.At, Note: h.Evidence.Note, Evidence: model.JSON(ev),
		})
	}
	for _, a := range st.Access {
		out.Access = append(out.Access, &model.AccessRecord{User: a.User, VM: a.VM, Protocol: a.Protocol, Stage: model.LifecycleStage(a.Stage), At: a.At})
	}
	if out.Allowed == nil {
		out.Allowed = []model.LifecycleAction{}
	}
	return out, nil
}

func endpointModel(v documents.VM) *model.VMEndpoint {
	e := &model.VMEndpoint{VM: v.Name, State: v.State}
	if v.Protocol != "" {
		port := v.Port
		e.Protocol, e.Host, e.Port, e.Username = &v.Protocol, &v.Host, &port, &v.Username
	}
	return e
}

func bookingModel(b schedule.Booking) *model.ScheduleBooking {
	m := &model.ScheduleBooking{ID: b.ID, Process: b.Process, Department: b.Department, Pool: b.Pool,
		Robots: max(b.Robots, 1), Cron: b.Cron, DurationMinutes: int(b.Duration.Minutes()), Timezone: b.Timezone}
	if b.Robot != "" {
		robot := b.Robot
		m.Robot = &robot
	}
	return m
}

func clashModel(c schedule.Clash) *model.ScheduleClash {
	m := &model.ScheduleClash{Kind: model.ClashKind(strings.ToUpper(string(c.Kind))), Pool: c.Pool, Bookings: c.Bookings, Needed: c.Needed, Max: c.Max}
	if c.Robot != "" {
		robot := c.Robot
		m.Robot = &robot
	}
	if !c.Start.IsZero() {
		start, end := c.Start, c.End
		m.Start, m.End = &start, &end
	}
	return m
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
