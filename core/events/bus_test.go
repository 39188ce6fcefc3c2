package events_test

import (
	"context"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ip(v int) *int { return &v }

func TestFilterMatch(t *testing.T) {
	e := &ent.Event{Type: "task.failed", Status: "failed", CustomerID: ip(1), PoolID: ip(2), ProcessID: ip(3), RobotID: ip(4), TaskID: ip(5), BatchID: ip(6)}
	vendorEv := &ent.Event{Type: "vendorjob.faulted", Vendor: "uipath", Status: "faulted"}
	cases := []struct {
		name string
		f    events.Filter
		e    *ent.Event
		want bool
	}{
		{"empty matches all", events.Filter{}, e, true},
		{"customer", events.Filter{CustomerID: ip(1)}, e, true},
		{"other customer", events.Filter{CustomerID: ip(9)}, e, false},
		{"customer on an event without one", events.Filter{CustomerID: ip(1)}, vendorEv, false},
		{"process and robot", events.Filter{ProcessID: ip(3), RobotID: ip(4)}, e, true},
		{"other robot", events.Filter{RobotID: ip(7)}, e, false},
		{"status", events.Filter{Status: "failed"}, e, true},
		{"other status", events.Filter{Status: "succeeded"}, e, false},
		{"vendor", events.Filter{Vendor: "uipath"}, vendorEv, true},
		{"rpacloud means no vendor", events.Filter{Vendor: "rpacloud"}, e, true},
		{"rpacloud is not uipath", events.Filter{Vendor: "rpacloud"}, vendorEv, false},
		{"prefix", events.Filter{Prefixes: []string{"anomaly.", "task."}}, e, true},
		{"other prefix", events.Filter{Prefixes: []string{"anomaly."}}, e, false},
		{"type", events.Filter{Types: map[events.Type]bool{"task.failed": true}}, e, true},
		{"type and prefix both apply", events.Filter{Types: map[events.Type]bool{"task.failed": true}, Prefixes: []string{"vm."}}, e, false},
	}
	for _, c := range cases {
		if got := c.f.Match(c.e); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}

type relay struct{ got []*ent.Event }

func (r *relay) Relay(evs []*ent.Event) { r.got = append(r.got, evs...) }

// Published events go to local subscribers and the relay; delivered ones
// (from other daemons) to local subscribers only, or they would bounce.
func TestRelay(t *testing.T) {
	b := events.New()
	r := &relay{}
	b.SetRelay(r)
	ctx, cancel := context.WithCancel(context.Background())
	ch := b.Subscribe(ctx, events.Filter{})
	b.Publish(&ent.Event{ID: 1, Type: "task.x"})
	b.Deliver(&ent.Event{ID: 2, Type: "task.y"})
	if a, c := <-ch, <-ch; a.ID != 1 || c.ID != 2 {
		t.Fatalf("local: %d %d", a.ID, c.ID)
	}
	if len(r.got) != 1 || r.got[0].ID != 1 {
		t.Fatalf("relayed: %+v", r.got)
	}
	b.SetRelay(nil)
	b.Publish(&ent.Event{ID: 3})
	<-ch
	if len(r.got) != 1 {
		t.Fatal("relay still called after removal")
	}
	cancel()
	for range ch {
	}
}

// A tap runs inside Publish and Deliver, for matching events only, and
// stops when its context ends.
func TestTapIsSynchronous(t *testing.T) {
	b := events.New()
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	b.Tap(ctx, events.Filter{Prefixes: []string{"token."}}, func(e *ent.Event) { got = append(got, e.Type) })
	b.Publish(&ent.Event{Type: "token.revoked"}, &ent.Event{Type: "task.failed"})
	b.Deliver(&ent.Event{Type: "token.revoked"})
	if len(got) != 2 {
		t.Fatalf("tap saw %v right after Publish and Deliver, want two token.revoked", got)
	}
	cancel()
	for b.Subscribers() > 0 {
		runtime.Gosched()
	}
	b.Publish(&ent.Event{Type: "token.revoked"})
	if len(got) != 2 {
		t.Fatalf("tap ran after its context ended: %v", got)
	}
}
