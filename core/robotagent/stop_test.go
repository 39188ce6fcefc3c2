package robotagent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotwire"
)

// stopDaemon answers the robot protocol of one running task: awaitStop and
// heartbeat as the test says, reportResult recorded.
type stopDaemon struct {
	mu        sync.Mutex
	awaitStop func() string // the response body
	heartbeat func() string
	reports   []map[string]any
}

func (d *stopDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req struct {
		Query     string `json:"query"`
		Variables struct {
			In map[string]any `json:"in"`
		} `json:"variables"`
	}
	_ = json.Unmarshal(raw, &req)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case strings.Contains(req.Query, "awaitStop"):
		_, _ = io.WriteString(w, d.awaitStop())
	case strings.Contains(req.Query, "heartbeat"):
		_, _ = io.WriteString(w, d.heartbeat())
	case strings.Contains(req.Query, "reportResult"):
		d.reports = append(d.reports, req.Variables.In)
		_, _ = io.WriteString(w, `{"data":{"reportResult":true}}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

// blocker runs until its context ends and keeps why it ended.
type blocker struct{ cause chan error }

func (b blocker) Run(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
	<-ctx.Done()
	b.cause <- context.Cause(ctx)
	return nil, ctx.Err()
}

func runStopped(t *testing.T, d *stopDaemon, maxDuration int) (map[string]any, error) {
	t.Helper()
	srv := httptest.NewServer(d)
	defer srv.Close()
	b := blocker{cause: make(chan error, 1)}
	a := &Agent{Client: gqlclient.New(srv.URL, "tok"), Log: slog.New(slog.DiscardHandler), Runners: map[string]Runner{"block": b}}
	c := &robotwire.Claim{TaskID: 7, Attempt: 1, Kind: "builtin", Runner: "block", MaxDurationSeconds: maxDuration,
		Deadline: time.Now().Add(time.Duration(maxDuration) * time.Second), Input: json.RawMessage(`{}`)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.work(context.Background(), c)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run was not stopped")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.reports) != 1 {
		t.Fatalf("%d reports, want 1", len(d.reports))
	}
	return d.reports[0], <-b.cause
}

// The long poll answers true: the run's context ends with ErrStopRequested
// long before the first heartbeat (100 s away), and the attempt is reported
// as a failure (the daemon knows it was a stop).
func TestStopThroughLongPoll(t *testing.T) {
	d := &stopDaemon{
		awaitStop: func() string { return `{"data":{"awaitStop":true}}` },
		heartbeat: func() string { return `{"data":{"heartbeat":"2030-01-01T00:00:00Z"}}` },
	}
	rep, cause := runStopped(t, d, 300)
	if !errors.Is(cause, ErrStopRequested) {
		t.Fatalf("run ended by %v, want ErrStopRequested", cause)
	}
	if rep["success"] != false || rep["errorClass"] != "EXECUTION" {
		t.Fatalf("report %v", rep)
	}
}

// A daemon without awaitStop (an older version answers a validation error):
// the stop still arrives, as the heartbeat's STOP_REQUESTED.
func TestStopThroughHeartbeat(t *testing.T) {
	d := &stopDaemon{
		awaitStop: func() string {
			return `{"errors":[{"message":"Cannot query field \"awaitStop\" on type \"Mutation\".","extensions":{"code":"GRAPHQL_VALIDATION_FAILED"}}],"data":null}`
		},
		heartbeat: func() string {
			return `{"errors":[{"message":"heartbeat: stop requested","extensions":{"code":"STOP_REQUESTED"}}],"data":null}`
		},
	}
	rep, cause := runStopped(t, d, 3)
	if !errors.Is(cause, ErrStopRequested) {
		t.Fatalf("run ended by %v, want ErrStopRequested", cause)
	}
	if rep["success"] != false {
		t.Fatalf("report %v", rep)
	}
}

// A transient failure of awaitStop (the daemon's INTERNAL error) does not
// end the long poll for the rest of the run: the agent tries again and the
// stop arrives through it, long before the first heartbeat (100 s away).
func TestStopAfterTransientLongPollError(t *testing.T) {
	calls := 0
	d := &stopDaemon{
		awaitStop: func() string {
			calls++
			if calls == 1 {
				return `{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}],"data":null}`
			}
			return `{"data":{"awaitStop":true}}`
		},
		heartbeat: func() string { return `{"data":{"heartbeat":"2030-01-01T00:00:00Z"}}` },
	}
	_, cause := runStopped(t, d, 300)
	if !errors.Is(cause, ErrStopRequested) {
		t.Fatalf("run ended by %v, want ErrStopRequested", cause)
	}
}

// A daemon that answers awaitStop with false at once (it does not hold the
// wait) is not polled in a tight loop: at most one call per minStopPoll
// until the heartbeat (every second here) brings the stop.
func TestAwaitStopAnsweredAtOnceIsNotATightLoop(t *testing.T) {
	calls := 0
	beats := 0
	d := &stopDaemon{
		awaitStop: func() string {
			calls++
			return `{"data":{"awaitStop":false}}`
		},
		heartbeat: func() string {
			beats++
			if beats < 2 {
				return `{"data":{"heartbeat":"2030-01-01T00:00:00Z"}}`
			}
			return `{"errors":[{"message":"heartbeat: stop requested","extensions":{"code":"STOP_REQUESTED"}}],"data":null}`
		},
	}
	if _, cause := runStopped(t, d, 3); !errors.Is(cause, ErrStopRequested) {
		t.Fatalf("run ended by %v, want ErrStopRequested", cause)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if calls > 3 {
		t.Fatalf("awaitStop called %d times in about 2 s, want at most one per %s", calls, minStopPoll)
	}
}
