package dispatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestGrouperCancelWhileQueued: a request whose caller gives up while it
// waits behind a group being written is skipped (never written, the
// caller gets ctx's error); one already taken into a group is answered
// even though its caller gave up; the lead passes on either way.
func TestGrouperCancelWhileQueued(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var written [][]int
	g := &grouper[int, int]{max: 4, write: func(_ context.Context, group []*groupCall[int, int]) {
		var reqs []int
		for _, c := range group {
			reqs = append(reqs, c.req)
			c.res, c.settled = c.req*10, true
		}
		mu.Lock()
		written = append(written, reqs)
		mu.Unlock()
		if group[0].req == 1 {
			<-release // hold the first group while the others queue
		}
	}}
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			g.mu.Lock()
			l := len(g.queue)
			g.mu.Unlock()
			if l == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue never reached %d", n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	type answer struct {
		res     int
		err     error
		settled bool
	}
	first, firstCtx := make(chan answer, 1), context.Background()
	go func() { r, err, ok := g.do(firstCtx, 1); first <- answer{r, err, ok} }()
	// Wait until the first group is being written.
	for {
		mu.Lock()
		n := len(written)
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	second, third := make(chan answer, 1), make(chan answer, 1)
	go func() { r, err, ok := g.do(ctx2, 2); second <- answer{r, err, ok} }()
	queued(1)
	go func() { r, err, ok := g.do(context.Background(), 3); third <- answer{r, err, ok} }()
	queued(2)
	cancel2()
	if a := <-second; !errors.Is(a.err, context.Canceled) || a.settled {
		t.Fatalf("cancelled queued caller: %+v", a)
	}
	close(release)
	if a := <-first; a.res != 10 || a.err != nil || !a.settled {
		t.Fatalf("first: %+v", a)
	}
	if a := <-third; a.res != 30 || a.err != nil || !a.settled {
		t.Fatalf("third: %+v", a)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(written) != 2 || len(written[1]) != 1 || written[1][0] != 3 {
		t.Fatalf("groups written %v; want [[1] [3]] (the cancelled 2 skipped)", written)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.leaders != 0 || len(g.queue) != 0 {
		t.Fatalf("grouper left %d leaders with %d queued", g.leaders, len(g.queue))
	}
}

// TestGrouperBound: no group is bigger than max, and every request is
// answered once.
func TestGrouperBound(t *testing.T) {
	var mu sync.Mutex
	biggest := 0
	g := &grouper[int, int]{max: 8, write: func(_ context.Context, group []*groupCall[int, int]) {
		mu.Lock()
		biggest = max(biggest, len(group))
		mu.Unlock()
		time.Sleep(time.Millisecond)
		for _, c := range group {
			c.res, c.settled = c.req, true
		}
	}}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if r, err, ok := g.do(context.Background(), i); r != i || err != nil || !ok {
				t.Errorf("request %d answered %d %v %v", i, r, err, ok)
			}
		})
	}
	wg.Wait()
	if biggest > 8 || biggest < 2 {
		t.Fatalf("biggest group %d; want 2..8", biggest)
	}
}
