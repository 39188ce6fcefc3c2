package winsvc_test

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

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotagent/winsvc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scm plays the Windows service control manager the way
// x/sys/windows/svc does: one request at a time on an unbuffered channel,
// every status the service reports kept in order, and the service's
// return values once Execute ends.
type scm struct {
	t        *testing.T
	requests chan winsvc.Request
	statuses chan winsvc.Status
	done     chan result
}

type result struct {
	specific bool
	code     uint32
}

func start(t *testing.T, ctx context.Context, h *winsvc.Handler) *scm {
	t.Helper()
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	s := &scm{t: t, requests: make(chan winsvc.Request), statuses: make(chan winsvc.Status, 1000), done: make(chan result, 1)}
	go func() {
		specific, code := h.Execute(ctx, s.requests, func(st winsvc.Status) { s.statuses <- st })
		s.done <- result{specific, code}
	}()
	s.expect(winsvc.Status{State: winsvc.StartPending})
	s.expect(winsvc.Status{State: winsvc.Running, Accepts: winsvc.AcceptStop | winsvc.AcceptShutdown | winsvc.AcceptPreShutdown})
	return s
}

// next is the next status the service reports.
func (s *scm) next() winsvc.Status {
	s.t.Helper()
	select {
	case st := <-s.statuses:
		return st
	case <-time.After(10 * time.Second):
		s.t.Fatal("the service reported no status")
	}
	return winsvc.Status{}
}

func (s *scm) expect(want winsvc.Status) {
	s.t.Helper()
	if got := s.next(); got != want {
		s.t.Fatalf("status %+v, want %+v", got, want)
	}
}

func (s *scm) send(c winsvc.Cmd) {
	s.t.Helper()
	select {
	case s.requests <- winsvc.Request{Cmd: c}:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("the service did not take control %d", c)
	}
}

func (s *scm) wait() result {
	s.t.Helper()
	select {
	case r := <-s.done:
		return r
	case <-time.After(10 * time.Second):
		s.t.Fatal("the service did not stop")
	}
	return result{}
}

func (s *scm) running() bool {
	select {
	case r := <-s.done:
		s.done <- r
		return false
	default:
		return true
	}
}

// Stop, shutdown and preshutdown each cancel the agent's context and wait
// for it: the service says it is stopping (accepting nothing more), its
// checkpoint grows while the agent finishes, Interrogate is answered, and
// a clean stop is exit code 0.
func TestStopShutdownPreShutdownWaitForTheAgent(t *testing.T) {
	for _, c := range []winsvc.Cmd{winsvc.CmdStop, winsvc.CmdShutdown, winsvc.CmdPreShutdown} {
		cancelled, finish := make(chan struct{}), make(chan struct{})
		h := &winsvc.Handler{Tick: time.Millisecond, Run: func(ctx context.Context) int {
			<-ctx.Done()
			close(cancelled)
			<-finish // the task's grace and report
			return 0
		}}
		s := start(t, context.Background(), h)
		s.send(winsvc.CmdInterrogate)
		s.expect(winsvc.Status{State: winsvc.Running, Accepts: winsvc.AcceptStop | winsvc.AcceptShutdown | winsvc.AcceptPreShutdown})
		s.send(c)
		s.expect(winsvc.Status{State: winsvc.StopPending, CheckPoint: 1, WaitHint: 2})
		<-cancelled
		for cp := uint32(2); cp <= 4; cp++ {
			if st := s.next(); st.State != winsvc.StopPending || st.Accepts != 0 || st.CheckPoint < cp {
				t.Fatalf("control %d: while the agent stops: %+v, want stop pending with checkpoint >= %d", c, st, cp)
			}
		}
		s.send(winsvc.CmdInterrogate)
		s.send(winsvc.CmdStop) // a second stop changes nothing
		if !s.running() {
			t.Fatalf("control %d: the service stopped before the agent did", c)
		}
		close(finish)
		if r := s.wait(); r != (result{false, 0}) {
			t.Fatalf("control %d: exit %+v, want a clean stop", c, r)
		}
	}
}

// An agent that fails stops the service with its exit code as a
// service-specific code, so the SCM's recovery actions restart it; one
// whose restart cannot help (the daemon refused its identity, exit 3)
// stops it cleanly, so it is not restarted in a loop.
func TestAgentFailureStopsTheServiceWithItsExitCode(t *testing.T) {
	for _, tc := range []struct {
		code int
		want result
	}{{1, result{true, 1}}, {3, result{false, 0}}, {0, result{false, 0}}} {
		release := make(chan struct{})
		s := start(t, context.Background(), &winsvc.Handler{NoRestart: []int{3}, Run: func(context.Context) int {
			<-release
			return tc.code
		}})
		close(release)
		if r := s.wait(); r != tc.want {
			t.Errorf("agent exit %d: service exit %+v, want %+v", tc.code, r, tc.want)
		}
	}
}

// Pause is not accepted; if it arrives anyway the service keeps running
// and says so.
func TestPauseIsIgnored(t *testing.T) {
	s := start(t, context.Background(), &winsvc.Handler{Run: func(ctx context.Context) int { <-ctx.Done(); return 0 }})
	s.send(winsvc.CmdPause)
	s.expect(winsvc.Status{State: winsvc.Running, Accepts: winsvc.AcceptStop | winsvc.AcceptShutdown | winsvc.AcceptPreShutdown})
	s.send(winsvc.CmdStop)
	if st := s.next(); st.State != winsvc.StopPending {
		t.Fatalf("after stop: %+v", st)
	}
	if r := s.wait(); r != (result{false, 0}) {
		t.Fatalf("exit %+v", r)
	}
}

// The service's context ending (the process is going away) stops the
// agent as a stop request does.
func TestContextEndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := start(t, ctx, &winsvc.Handler{Run: func(ctx context.Context) int { <-ctx.Done(); return 0 }})
	cancel()
	if st := s.next(); st.State != winsvc.StopPending {
		t.Fatalf("after the context ended: %+v", st)
	}
	if r := s.wait(); r != (result{false, 0}) {
		t.Fatalf("exit %+v", r)
	}
}

// An agent that does not stop within StopLimit does not hold the service
// (or a machine's shutdown) forever.
func TestStopLimit(t *testing.T) {
	release := make(chan struct{})
	s := start(t, context.Background(), &winsvc.Handler{StopLimit: 20 * time.Millisecond, Run: func(context.Context) int {
		<-release
		return 0
	}})
	s.send(winsvc.CmdStop)
	if r := s.wait(); r != (result{false, 0}) {
		t.Fatalf("exit %+v", r)
	}
	close(release) // the agent's goroutine, which the process's exit would end
}

// fakeDaemon speaks the robot protocol for one task: the agent registers,
// claims task 7, holds awaitStop polls, and reports.
type fakeDaemon struct {
	mu      sync.Mutex
	claimed bool
	reports []map[string]any
}

func (d *fakeDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	case strings.Contains(req.Query, "registerRobot"):
		_, _ = io.WriteString(w, `{"data":{"registerRobot":{"pool":"win","robot":{"name":"vm-1"}}}}`)
	case strings.Contains(req.Query, "claimTask") && !d.claimed:
		d.claimed = true
		deadline := time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)
		_, _ = io.WriteString(w, `{"data":{"claimTask":{"taskID":"7","attempt":1,"deadline":"`+deadline+`","process":"p","kind":"builtin","runner":"slow","maxDurationSeconds":60,"input":{}}}}`)
	case strings.Contains(req.Query, "claimTask"):
		_, _ = io.WriteString(w, `{"data":{"claimTask":null}}`)
	case strings.Contains(req.Query, "awaitStop"):
		_, _ = io.WriteString(w, `{"data":{"awaitStop":false}}`)
	case strings.Contains(req.Query, "heartbeat"):
		_, _ = io.WriteString(w, `{"data":{"heartbeat":true}}`)
	case strings.Contains(req.Query, "reportResult"):
		d.reports = append(d.reports, req.Variables.In)
		_, _ = io.WriteString(w, `{"data":{"reportResult":true}}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func (d *fakeDaemon) reported() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]any(nil), d.reports...)
}

// slow is a task that has started and finishes when told, ignoring the
// agent's stop: the agent's stop grace is what lets it finish.
type slow struct{ started, finish chan struct{} }

func (s slow) Run(context.Context, json.RawMessage) (json.RawMessage, error) {
	close(s.started)
	<-s.finish
	return json.RawMessage(`{"done":true}`), nil
}

// The real agent under the service: a stop while a task runs waits for
// the task to finish within its stop grace and for its result to reach the
// daemon before the service reports it stopped.
func TestStopWhileATaskRunsWaitsForItsReport(t *testing.T) {
	d := &fakeDaemon{}
	srv := httptest.NewServer(d)
	defer srv.Close()
	task := slow{started: make(chan struct{}), finish: make(chan struct{})}
	agent := &robotagent.Agent{Client: gqlclient.New(srv.URL, "tok"), Log: slog.New(slog.DiscardHandler),
		Runners: map[string]robotagent.Runner{"slow": task}, ShutdownGrace: time.Minute}
	s := start(t, context.Background(), &winsvc.Handler{Tick: time.Hour, Run: func(ctx context.Context) int {
		if err := agent.Run(ctx); err != nil {
			return 1
		}
		return 0
	}})
	select {
	case <-task.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not start the task")
	}
	s.send(winsvc.CmdStop)
	if st := s.next(); st.State != winsvc.StopPending {
		t.Fatalf("after stop: %+v", st)
	}
	if !s.running() || len(d.reported()) != 0 {
		t.Fatal("the service stopped, or the task reported, before the task finished")
	}
	close(task.finish)
	if r := s.wait(); r != (result{false, 0}) {
		t.Fatalf("exit %+v", r)
	}
	got := d.reported()
	if len(got) != 1 || got[0]["success"] != true {
		t.Fatalf("reports when the service stopped: %v, want the task's success", got)
	}
}

// sink is an Event Log that keeps what it is given.
type sink struct{ events []string }

func (s *sink) Info(eid uint32, msg string) error    { return s.add("info", eid, msg) }
func (s *sink) Warning(eid uint32, msg string) error { return s.add("warning", eid, msg) }
func (s *sink) Error(eid uint32, msg string) error   { return s.add("error", eid, msg) }
func (s *sink) add(kind string, eid uint32, msg string) error {
	if msg == "fail" {
		return errors.New("event log full")
	}
	s.events = append(s.events, kind+" "+string(rune('0'+eid))+" "+msg)
	return nil
}

// The agent's slog lines become events of their level, without their own
// time; its fatal one-liners are errors.
func TestEventWriter(t *testing.T) {
	s := &sink{}
	log := slog.New(slog.NewTextHandler(winsvc.EventWriter{Sink: s}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Debug("polling")
	log.Info("robot ready", "robot", "vm-1")
	log.Warn("claim failed; retrying")
	log.Error("robot stopped", "err", "boom")
	w := winsvc.EventWriter{Sink: s}
	_, _ = io.WriteString(w, "rpacloud robot: robot vm-1: its identity was revoked\n")
	_, _ = io.WriteString(w, "\n")
	want := []string{
		"info 1 level=DEBUG msg=polling",
		"info 1 level=INFO msg=\"robot ready\" robot=vm-1",
		"warning 1 level=WARN msg=\"claim failed; retrying\"",
		"error 1 level=ERROR msg=\"robot stopped\" err=boom",
		"error 1 rpacloud robot: robot vm-1: its identity was revoked",
	}
	if strings.Join(s.events, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(s.events, "\n"), strings.Join(want, "\n"))
	}
	if _, err := io.WriteString(w, "fail"); err == nil || !strings.Contains(err.Error(), "event log full") {
		t.Fatalf("a failing event log: %v", err)
	}
	big := strings.Repeat("é", 40000)
	s.events = nil
	_, _ = io.WriteString(w, big)
	if n := len(s.events[0]); n > 30010 {
		t.Fatalf("an event of %d bytes", n)
	}
}
