package sdktest

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// This file is the test kit every rpacloud test may share, plugin tests
// included: it lives in the SDK's test package because plugin tests may
// import plugins/sdk/... alone, and core tests may import it too.

// Clock is a fake clock for code that takes a Now func. A frozen clock
// (NewClock) moves only when told; a running one (RunningClock) follows
// the real time, shifted by what the test added, for code that also waits
// in real time.
type Clock struct {
	mu      sync.Mutex
	t       time.Time     // frozen time
	off     time.Duration // shift of a running clock
	running bool
}

// NewClock returns a clock frozen at start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// RunningClock returns a clock that reads the real time until Add shifts it.
func RunningClock() *Clock { return &Clock{running: true} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.off)
	}
	return c.t
}

// Add moves the clock forward by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	c.off += d
}

// Set puts a frozen clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// FreeAddr returns a loopback address nothing listens on now, for a
// server the test starts as a separate process. Another process may take
// it before the server binds; tests that can pass a listener should.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free address: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("free address: %w", err)
	}
	return addr, nil
}

// Eventually polls cond until it holds, failing the test with what if it
// does not within timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Chromium returns the Chromium tests drive: $RPACLOUD_CHROMIUM, else
// /usr/bin/chromium. Without one the test is skipped, or fails when
// RPACLOUD_REQUIRE_CHROMIUM=1 (make test sets it, so a missing browser
// cannot pass as a skip).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("RPACLOUD_CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if os.Getenv("RPACLOUD_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("Chromium not found ($RPACLOUD_CHROMIUM, /usr/bin/chromium) and RPACLOUD_REQUIRE_CHROMIUM=1")
	}
	t.Skip("Chromium not found; install Debian's chromium or set RPACLOUD_CHROMIUM")
	return ""
}

// Zeros is a request body of zero bytes that counts what was read of it:
// a test of a server's read limits sends a huge body without holding it in
// memory, then checks how much the server took.
type Zeros struct {
	left int64
	read atomic.Int64
}

// NewZeros returns a body of n zero bytes.
func NewZeros(n int64) *Zeros { return &Zeros{left: n} }

// Read implements io.Reader.
func (z *Zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), z.left)
	clear(p[:n])
	z.left -= n
	z.read.Add(n)
	return int(n), nil
}

// Taken is how many bytes were read so far.
func (z *Zeros) Taken() int64 { return z.read.Load() }
