package lease_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/lease"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// fakeElection is a Campaigner whose outcome the test sets.
type fakeElection struct {
	mu       sync.Mutex
	term     int64
	leader   bool
	err      error
	resigned int
}

func (f *fakeElection) set(term int64, leader bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.term, f.leader, f.err = term, leader, err
}

func (f *fakeElection) Campaign(context.Context) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.term, f.leader, f.err
}
func (f *fakeElection) Leading() bool      { f.mu.Lock(); defer f.mu.Unlock(); return f.leader }
func (f *fakeElection) TTL() time.Duration { return 15 * time.Second }
func (f *fakeElection) Resign(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resigned++
	return nil
}

// stepper is a Tick the test drives: each campaign waits for a step, and
// step returns once the group has acted on the previous campaign and is
// waiting again.
type stepper struct{ next, waiting chan struct{} }

func newStepper() *stepper { return &stepper{next: make(chan struct{}), waiting: make(chan struct{})} }

func (s *stepper) tick(ctx context.Context, _ time.Duration) bool {
	select {
	case s.waiting <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	select {
	case <-s.next:
		return true
	case <-ctx.Done():
		return false
	}
}

// step lets the group campaign once more and waits until it has acted.
func (s *stepper) step(t *testing.T) {
	t.Helper()
	s.next <- struct{}{}
	select {
	case <-s.waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the group did not come back to its tick")
	}
}

// recorder is a service that counts its runs and tells whether it runs.
type recorder struct {
	mu      sync.Mutex
	starts  []int64
	running int
}

func (r *recorder) service(name string) lease.Service {
	return lease.Service{Name: name, Run: func(ctx context.Context, term int64) {
		r.mu.Lock()
		r.starts = append(r.starts, term)
		r.running++
		r.mu.Unlock()
		<-ctx.Done()
		r.mu.Lock()
		r.running--
		r.mu.Unlock()
	}}
}

func (r *recorder) state() (starts []int64, running int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.starts...), r.running
}

func waitRunning(t *testing.T, r *recorder, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, running := r.state(); running == want {
			return
		}
		if time.Now().After(deadline) {
			_, running := r.state()
			t.Fatalf("%d services running, want %d", running, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestGroupLeadership: the services start on gain, stop on loss (and on an
// election error), start again on re-gain, restart when the term changes,
// and are stopped before the group resigns when its context ends.
func TestGroupLeadership(t *testing.T) {
	el := &fakeElection{}
	st := newStepper()
	var a, b recorder
	g := lease.NewGroup(lease.GroupOptions{Elector: el, Tick: st.tick, Logger: quiet()},
		a.service("a"), b.service("b"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	<-st.waiting // first campaign: not leader

	// Services start in their own goroutines, so a start shows a moment
	// after the group has acted; a stop shows at once (the group waits).
	check := func(what string, wantStarts []int64, wantRunning int) {
		t.Helper()
		for _, r := range []*recorder{&a, &b} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				starts, running := r.state()
				if slices.Equal(starts, wantStarts) && running == wantRunning {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: starts %v running %d, want %v and %d", what, starts, running, wantStarts, wantRunning)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	check("follower", nil, 0)

	el.set(1, true, nil)
	st.step(t)
	check("gained", []int64{1}, 1)
	st.step(t)
	check("renewed", []int64{1}, 1)

	el.set(0, false, nil)
	st.step(t)
	check("lost", []int64{1}, 0)

	el.set(3, true, nil)
	st.step(t)
	check("re-gained", []int64{1, 3}, 1)

	el.set(4, true, nil)
	st.step(t)
	check("new term", []int64{1, 3, 4}, 1)

	el.set(4, true, errors.New("database gone"))
	st.step(t)
	check("election error", []int64{1, 3, 4}, 0)

	el.set(5, true, nil)
	st.step(t)
	cancel()
	<-done
	check("cancelled", []int64{1, 3, 4, 5}, 0)
	if el.resigned != 1 {
		t.Fatalf("resigned %d times, want once", el.resigned)
	}
}

// TestGroupAlone: without an elector (one daemon on an SQLite file) the
// services run in term 1 until the context ends.
func TestGroupAlone(t *testing.T) {
	var a recorder
	g := lease.NewGroup(lease.GroupOptions{Logger: quiet()}, a.service("a"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.Run(ctx); close(done) }()
	waitRunning(t, &a, 1)
	if starts, _ := a.state(); !slices.Equal(starts, []int64{1}) {
		t.Fatalf("starts %v, want term 1", starts)
	}
	cancel()
	<-done
	if _, running := a.state(); running != 0 {
		t.Fatal("service still running after Run returned")
	}
}

// TestGroupOneLeader: two daemons' groups on one database with real
// electors: exactly one runs the services at a time, and when it stops
// (and resigns) the other takes over.
func TestGroupOneLeader(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var a, b recorder
		mk := func(holder string, r *recorder, st *stepper) *lease.Group {
			e, err := lease.New(db.Client, "leader", holder, lease.Options{TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			return lease.NewGroup(lease.GroupOptions{Elector: e, Tick: st.tick, Logger: quiet()}, r.service(holder))
		}
		sa, sb := newStepper(), newStepper()
		ga, gb := mk("a", &a, sa), mk("b", &b, sb)
		ctxA, cancelA := context.WithCancel(context.Background())
		ctxB, cancelB := context.WithCancel(context.Background())
		defer cancelB()
		doneA, doneB := make(chan struct{}), make(chan struct{})
		go func() { ga.Run(ctxA); close(doneA) }()
		<-sa.waiting
		go func() { gb.Run(ctxB); close(doneB) }()
		<-sb.waiting
		sa.step(t)
		sb.step(t)
		waitRunning(t, &a, 1)
		if _, rb := b.state(); rb != 0 {
			t.Fatal("b leads while a holds the lease")
		}
		cancelA()
		<-doneA
		sb.step(t)
		waitRunning(t, &b, 1)
		if starts, _ := b.state(); !slices.Equal(starts, []int64{2}) {
			t.Fatalf("b after a resigned: starts %v, want term 2", starts)
		}
		cancelB()
		<-doneB
	})
}
