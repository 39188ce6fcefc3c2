package gqlclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// daemon is a fake daemon that answers with answer and counts its calls.
type daemon struct {
	*httptest.Server
	calls  atomic.Int32
	answer atomic.Value // func(w http.ResponseWriter)
}

func newDaemon(t *testing.T, name string) *daemon {
	d := &daemon{}
	d.setAnswer(func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"data":{"who":"`+name+`"}}`) })
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.calls.Add(1)
		d.answer.Load().(func(http.ResponseWriter))(w)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *daemon) setAnswer(f func(w http.ResponseWriter)) { d.answer.Store(f) }

func status(code int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code); _, _ = io.WriteString(w, body) }
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func who(t *testing.T, c *Client) (string, error) {
	t.Helper()
	var out struct{ Who string }
	err := c.Do(context.Background(), `{who}`, nil, &out)
	return out.Who, err
}

// The client talks to one daemon at a time: it stays with the first while
// it answers, moves to the next when it is closed mid-way (and says so in
// its log), and wraps round to the first when the last fails.
func TestFailoverOnClosedDaemon(t *testing.T) {
	a, b := newDaemon(t, "a"), newDaemon(t, "b")
	var logs syncBuf
	c := NewFailover([]string{a.URL, b.URL + "/"}, "tok", slog.New(slog.NewTextHandler(&logs, nil)))
	for range 3 {
		if got, err := who(t, c); err != nil || got != "a" {
			t.Fatalf("first daemon: %q %v", got, err)
		}
	}
	if b.calls.Load() != 0 {
		t.Fatalf("the second daemon was called %d times while the first answered", b.calls.Load())
	}
	a.Close()
	if _, err := who(t, c); err == nil {
		t.Fatal("a call to a closed daemon succeeded")
	}
	if !strings.Contains(logs.String(), "moving to the next one") || !strings.Contains(logs.String(), "to="+b.URL) {
		t.Fatalf("the log does not name the daemon moved to:\n%s", logs.String())
	}
	if c.Server() != b.URL {
		t.Fatalf("Server() = %q, want %q", c.Server(), b.URL)
	}
	if cp := *c; cp.Server() != b.URL {
		t.Fatalf("a copy of the client uses %q, want %q like the original", cp.Server(), b.URL)
	}
	for range 3 {
		if got, err := who(t, c); err != nil || got != "b" {
			t.Fatalf("after the failover: %q %v", got, err)
		}
	}
	b.setAnswer(status(http.StatusBadGateway, "no upstream"))
	var serr *StatusError
	if _, err := who(t, c); !errors.As(err, &serr) || serr.Status != http.StatusBadGateway {
		t.Fatalf("a 502: %v", err)
	}
	if c.Server() != a.URL {
		t.Fatalf("after the last daemon failed the client uses %q, want the first again", c.Server())
	}
}

// An answer of the daemon, a refusal included, is final: another daemon
// of the same database would say the same, so the client stays.
func TestNoFailoverOnAnswers(t *testing.T) {
	a, b := newDaemon(t, "a"), newDaemon(t, "b")
	c := NewFailover([]string{a.URL, b.URL}, "tok", nil)
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter)
		check  func(error) bool
	}{
		{"401", status(http.StatusUnauthorized, "token refused"), func(err error) bool { return errors.Is(err, ErrUnauthorized) }},
		{"413", status(http.StatusRequestEntityTooLarge, "too big"), func(err error) bool {
			var serr *StatusError
			return errors.As(err, &serr) && serr.Status == 413
		}},
		{"GraphQL error", status(http.StatusOK, `{"errors":[{"message":"no","extensions":{"code":"STALE_ATTEMPT"}}]}`), func(err error) bool {
			var gerr Errors
			return errors.As(err, &gerr) && gerr.HasCode("STALE_ATTEMPT")
		}},
	} {
		a.setAnswer(tc.answer)
		if _, err := who(t, c); !tc.check(err) {
			t.Fatalf("%s: unexpected error %v", tc.name, err)
		}
		if c.Server() != a.URL {
			t.Fatalf("%s moved the client to %s", tc.name, c.Server())
		}
	}
	if b.calls.Load() != 0 {
		t.Fatalf("the second daemon was called %d times", b.calls.Load())
	}
}

// A daemon that does not answer within the client's time-out is left; a
// call the caller cancels is not a reason to move.
func TestFailoverOnTimeoutNotOnCancel(t *testing.T) {
	release := make(chan struct{})
	a, b := newDaemon(t, "a"), newDaemon(t, "b")
	a.setAnswer(func(w http.ResponseWriter) { <-release })
	defer close(release) // before the servers' Close, which waits for handlers
	c := NewFailover([]string{a.URL, b.URL}, "tok", nil)
	c.HTTP.Timeout = 200 * time.Millisecond

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if err := c.Do(ctx, `{who}`, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	if c.Server() != a.URL {
		t.Fatal("a call the caller cancelled moved the client")
	}
	if _, err := who(t, c); err == nil {
		t.Fatal("a timed-out call succeeded")
	}
	if got, err := who(t, c); err != nil || got != "b" {
		t.Fatalf("after the time-out: %q %v", got, err)
	}
}

// Calls in flight when a daemon dies fail together: the client moves once,
// to the next daemon, not past it.
func TestConcurrentFailuresMoveOnce(t *testing.T) {
	a, b, c3 := newDaemon(t, "a"), newDaemon(t, "b"), newDaemon(t, "c")
	a.setAnswer(status(http.StatusServiceUnavailable, "shutting down"))
	c := NewFailover([]string{a.URL, b.URL, c3.URL}, "tok", nil)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Read the endpoint before any call fails, as calls already
			// in flight would have.
			u, i := c.current()
			if err := c.do(context.Background(), u, `{who}`, nil, nil); err != nil && unreachable(err) {
				c.failover(i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if c.Server() != b.URL {
		t.Fatalf("after simultaneous failures the client uses %s, want the next daemon %s", c.Server(), b.URL)
	}
}

// One URL is a plain client; the list is read from flags and variables with
// clear errors, and a password in a URL never reaches a message.
func TestParseServers(t *testing.T) {
	if c := NewFailover([]string{"http://a:1"}, "", nil); c.URL != "http://a:1/graphql" || c.daemons != nil {
		t.Fatalf("one server: %+v", c)
	}
	got, err := ParseServers("--server", "http://a:8080/, http://b:8080", "http://a:8080", "http://c")
	if err != nil || strings.Join(got, " ") != "http://a:8080 http://b:8080 http://c" {
		t.Fatalf("ParseServers: %q %v", got, err)
	}
	// A failover never takes the token from TLS to plain HTTP.
	if _, err := ParseServers("--server", "https://a:8443,http://b:8080"); err == nil || !strings.Contains(err.Error(), "mix http and https") {
		t.Fatalf("mixed schemes accepted: %v", err)
	}
	if got, err := ParseServers("--server", "", " , "); err != nil || len(got) != 0 {
		t.Fatalf("empty: %q %v", got, err)
	}
	for _, bad := range []string{"a:8080", "ftp://a", "http://", "http://a?x=1", "http://u:hunter2@/x"} {
		_, err := ParseServers("--server", bad)
		if err == nil || !strings.Contains(err.Error(), "--server") || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	many := strings.Repeat("http://a:1,", 3) + "http://b:1"
	for i := range MaxServers {
		many += ",http://h" + string(rune('a'+i)) + ":1"
	}
	if _, err := ParseServers("RPACLOUD_SERVER", many); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many: %v", err)
	}
}
