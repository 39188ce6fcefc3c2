package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/retry"
)

func TestSleep(t *testing.T) {
	if !retry.Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a full wait reported as cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if retry.Sleep(ctx, time.Hour) {
		t.Fatal("a cancelled wait reported as complete")
	}
	if time.Since(start) > time.Second {
		t.Fatal("a cancelled wait did not end at once")
	}
}

// TestBackoff: waits double from lo to hi within the jitter, and Reset
// starts over.
func TestBackoff(t *testing.T) {
	b := retry.Backoff(100*time.Millisecond, time.Second)
	within := func(got, nominal time.Duration) bool {
		return float64(got) >= float64(nominal)*(1-retry.Jitter) && float64(got) <= float64(nominal)*(1+retry.Jitter)
	}
	for _, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		if got := b.NextBackOff(); !within(got, want*time.Millisecond) {
			t.Fatalf("wait %v, want about %v", got, want*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.NextBackOff(); !within(got, 100*time.Millisecond) {
		t.Fatalf("after Reset: %v", got)
	}
}
