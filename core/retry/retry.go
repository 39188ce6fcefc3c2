// Package retry is the one place loops wait: a sleep that ends with its
// context, and the exponential back-off (github.com/cenkalti/backoff/v5)
// every reconnecting or retrying loop uses. It depends on the standard
// library and that back-off library alone, so that the robot agent, which
// must stay free of the daemon's storage and configuration, can use it too.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Sleep waits d, or less when ctx ends first. It reports whether the whole
// wait passed, that is false when the caller should stop.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Jitter is the back-off's randomisation: each wait is drawn within ±20%
// of its nominal value, so that many clients that lost the same server do
// not come back in lock-step.
const Jitter = 0.2

// Backoff returns a back-off whose waits start at lo and double up to hi,
// with Jitter. Its NextBackOff never returns backoff.Stop; Reset starts
// over at lo after a success.
func Backoff(lo, hi time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: lo, RandomizationFactor: Jitter, Multiplier: 2, MaxInterval: hi}
}
