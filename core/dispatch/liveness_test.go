package dispatch_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/robot"
)

// An idle robot's empty poll writes nothing; its moment reaches the
// database at the flush, never moving backwards, and a state change
// (suspect to idle) is still written at once.
func TestLivenessIsFlushedNotWrittenPerPoll(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 2, 0)
		ctx := context.Background()
		f.checkIn(0)
		first := f.clock.Now()
		f.clock.Add(30 * time.Second)
		if c := f.claim(t, 0); c != nil {
			t.Fatal("claimed from an empty pool")
		}
		r := f.db.Robot.GetX(sys(), f.robots[0].ID)
		if !r.LastSeenAt.Equal(first) {
			t.Fatalf("an idle robot's empty poll wrote last_seen_at %v; want it unchanged (%v) until the flush", r.LastSeenAt, first)
		}
		if at, ok := f.q.LastSeen(r.ID); !ok || !at.Equal(f.clock.Now()) {
			t.Fatalf("the poll's moment is not held in memory: %v %v", at, ok)
		}
		n, err := f.q.FlushLiveness(ctx)
		if err != nil || n != 1 {
			t.Fatalf("flush: %d robots, %v", n, err)
		}
		if r := f.db.Robot.GetX(sys(), f.robots[0].ID); !r.LastSeenAt.Equal(f.clock.Now()) {
			t.Fatalf("after the flush last_seen_at is %v, want %v", r.LastSeenAt, f.clock.Now())
		}
		// Another daemon wrote a later moment: an older one never
		// overwrites it.
		later := f.clock.Now().Add(time.Minute)
		f.db.Robot.UpdateOneID(r.ID).SetLastSeenAt(later).ExecX(sys())
		f.q.Seen(r.ID, f.clock.Now())
		if _, err := f.q.FlushLiveness(ctx); err != nil {
			t.Fatal(err)
		}
		if r := f.db.Robot.GetX(sys(), f.robots[0].ID); !r.LastSeenAt.Equal(later) {
			t.Fatalf("a flush moved last_seen_at back to %v from %v", r.LastSeenAt, later)
		}
		// Suspect to idle is a state change: written by the poll itself.
		f.db.Robot.UpdateOneID(f.robots[1].ID).SetState(robot.StateSuspect).ExecX(sys())
		f.claim(t, 1)
		if r := f.db.Robot.GetX(sys(), f.robots[1].ID); r.State != robot.StateIdle || r.LastSeenAt == nil || !r.LastSeenAt.Equal(f.clock.Now()) {
			t.Fatalf("a suspect robot's poll left it %s seen %v", r.State, r.LastSeenAt)
		}
		// Only the latest moment per robot is kept.
		for i := range 1200 {
			f.q.Seen(f.robots[i%2].ID, f.clock.Now().Add(time.Duration(i)*time.Millisecond))
		}
		if n, err := f.q.FlushLiveness(ctx); err != nil || n != 2 {
			t.Fatalf("flush: %d robots, %v; want 2 (latest moment per robot)", n, err)
		}
		if n, _ := f.q.FlushLiveness(ctx); n != 0 {
			t.Fatalf("a second flush wrote %d robots; nothing was seen since", n)
		}
		// A fleet larger than one statement's chunk is written whole.
		var bulk []*ent.RobotCreate
		for i := range 1201 {
			bulk = append(bulk, f.db.Robot.Create().SetName(fmt.Sprintf("fleet-%d", i)).SetPoolID(f.pool.ID).SetState(robot.StateIdle))
		}
		var fleet []*ent.Robot
		for start := 0; start < len(bulk); start += 400 {
			fleet = append(fleet, f.db.Robot.CreateBulk(bulk[start:min(start+400, len(bulk))]...).SaveX(sys())...)
		}
		at := f.clock.Now().Add(time.Hour)
		for _, r := range fleet {
			f.q.Seen(r.ID, at)
		}
		if n, err := f.q.FlushLiveness(ctx); err != nil || n != len(fleet) {
			t.Fatalf("flush of %d robots: %d written, %v", len(fleet), n, err)
		}
		if got := f.db.Robot.Query().Where(robot.LastSeenAtEQ(at)).CountX(sys()); got != len(fleet) {
			t.Fatalf("%d of %d robots carry the flushed moment", got, len(fleet))
		}
	})
}
