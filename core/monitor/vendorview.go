package monitor

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/event"
)

// vendorEventWindow bounds how many of the latest vendor job or robot
// events one summary reads. The vendor poller records state changes only
// (and every robot and recent job again when it starts), so the latest
// event per job or robot is its state; the bound keeps a summary's memory
// and time flat on a database with years of vendor events, at the price of
// forgetting a robot whose last change is older than this many events.
const vendorEventWindow = 5000

// VendorJob is a vendor's job whose latest recorded state is running,
// as the vendor's orchestrator reported it through the vendor poller.
type VendorJob struct {
	Vendor, ExternalID, State, Process, Customer string
	Since                                        time.Time
}

// latestVendor returns the latest event per (vendor, external id) among
// the newest vendorEventWindow events of family, read with ctx (so the
// customer rule applies when ctx is a caller's).
func (m *Monitor) latestVendor(ctx context.Context, family string) ([]*ent.Event, error) {
	evs, err := m.client.Event.Query().Where(event.TypeHasPrefix(family)).
		Order(ent.Desc(event.FieldID)).Limit(vendorEventWindow).
		Select(event.FieldAt, event.FieldType, event.FieldVendor, event.FieldExternalID, event.FieldStatus,
			event.FieldProcessID, event.FieldCustomerID).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("summary: %s events: %w", strings.TrimSuffix(family, "."), err)
	}
	seen := map[[2]string]bool{}
	out := evs[:0]
	for _, e := range evs {
		k := [2]string{e.Vendor, e.ExternalID}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out, nil
}

// vendorRobots counts the vendors' robots by their latest state. Robots
// are infrastructure (no customer data), read as the system like
// rpacloud's own; a robot the vendor no longer lists is not counted.
func (m *Monitor) vendorRobots(sctx context.Context) ([]VendorStatusCount, error) {
	evs, err := m.latestVendor(sctx, events.FamilyVendorRobot)
	if err != nil {
		return nil, err
	}
	by := map[[2]string]int{}
	for _, e := range evs {
		if e.Status == "removed" {
			continue
		}
		by[[2]string{e.Vendor, e.Status}]++
	}
	out := make([]VendorStatusCount, 0, len(by))
	for k, c := range by {
		out = append(out, VendorStatusCount{Vendor: k[0], Status: k[1], Count: c})
	}
	return out, nil
}

// vendorJobs lists the vendors' jobs last seen running, oldest first. It
// reads with the caller's ctx: a department sees the jobs of its own
// processes only (a job linked to no process belongs to no customer).
func (m *Monitor) vendorJobs(ctx context.Context, n *names) ([]VendorJob, error) {
	evs, err := m.latestVendor(ctx, events.FamilyVendorJob)
	if err != nil {
		return nil, err
	}
	var out []VendorJob
	for _, e := range evs {
		if e.Status != "running" {
			continue
		}
		j := VendorJob{Vendor: e.Vendor, ExternalID: e.ExternalID, State: e.Status, Customer: n.customer(e.CustomerID), Since: e.At}
		if e.ProcessID != nil {
			j.Process = n.process(*e.ProcessID)
		}
		out = append(out, j)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out, nil
}
