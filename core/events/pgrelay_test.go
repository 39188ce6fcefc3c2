package events_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
)

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

// TestRelayTwoDaemons: a subscriber on daemon B sees every event daemon A
// publishes, in order per task, and nothing twice; and the other way round.
func TestRelayTwoDaemons(t *testing.T) {
	dsn, dbA, dbB := storetest.SharedPostgres(t)
	ctx := sys()
	busA, busB := events.New(), events.New()
	ra, err := events.StartPGRelay(ctx, dsn, busA, dbA.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := events.StartPGRelay(ctx, dsn, busB, dbB.Client, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()

	subCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	onB := busB.Subscribe(subCtx, events.Filter{})
	onA := busA.Subscribe(subCtx, events.Filter{})

	// Five tasks, 40 events each, written and published by A the way the
	// dispatcher does: commit, then publish. One message is too big for a
	// notification and travels by id.
	const tasks, per = 5, 40
	for i := range per {
		for task := 1; task <= tasks; task++ {
			msg := fmt.Sprintf("step %d", i)
			if task == 3 && i == 7 {
				msg = strings.Repeat("x", 9000)
			}
			e, err := dbA.Event.Create().SetType("task.step").SetTaskID(task).SetMessage(msg).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			busA.Publish(e)
		}
	}
	next := make(map[int]int)
	seen := map[int]bool{}
	deadline := time.After(30 * time.Second)
	for got := 0; got < tasks*per; {
		select {
		case e := <-onB:
			if seen[e.ID] {
				t.Fatalf("event %d delivered twice", e.ID)
			}
			seen[e.ID] = true
			step := next[*e.TaskID]
			if want := fmt.Sprintf("step %d", step); e.Message != want && !(len(e.Message) == 9000 && step == 7) {
				t.Fatalf("task %d: got %q, want %q: out of order", *e.TaskID, e.Message[:min(20, len(e.Message))], want)
			}
			next[*e.TaskID]++
			got++
		case <-deadline:
			t.Fatalf("B received %d of %d events", len(seen), tasks*per)
		}
	}
	// A's own subscriber got them from its own bus, once each.
	for range tasks * per {
		<-onA
	}
	// B publishes, A hears it.
	e, err := dbB.Event.Create().SetType("anomaly.opened").SetMessage("from B").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	busB.Publish(e)
	if own := <-onB; own.ID != e.ID {
		t.Fatalf("B's own subscriber got %+v", own)
	}
	select {
	case got := <-onA:
		if got.ID != e.ID || got.Message != "from B" {
			t.Fatalf("A got %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("A never heard B")
	}
	select {
	case extra := <-onA:
		t.Fatalf("unexpected event on A: %+v", extra)
	case extra := <-onB:
		t.Fatalf("B heard its own event twice: %+v", extra)
	case <-time.After(300 * time.Millisecond):
	}
	if ra.Dropped()+rb.Dropped() != 0 {
		t.Fatalf("dropped %d/%d", ra.Dropped(), rb.Dropped())
	}
}
