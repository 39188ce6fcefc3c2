package robotagent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

func robotwireEnrol() robotwire.EnrolRequest {
	return robotwire.EnrolRequest{JoinToken: "rpj_secret", Name: "r1", Hostname: "h"}
}

// fleetDaemon is one of several fake daemons sharing a database: it hands
// out at most one task (claim), and keeps the calls it got by operation.
type fleetDaemon struct {
	claim string // the claimTask answer of its first claim; "" none

	mu      sync.Mutex
	calls   map[string]int
	reports []map[string]any
}

func (d *fleetDaemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req struct {
		Query     string `json:"query"`
		Variables struct {
			In map[string]any `json:"in"`
		} `json:"variables"`
	}
	_ = json.Unmarshal(raw, &req)
	op := req.Query[strings.Index(req.Query, "{")+1:]
	op = op[:strings.IndexAny(op, "(")]
	d.mu.Lock()
	d.calls[op]++
	n := d.calls[op]
	if op == "reportResult" {
		d.reports = append(d.reports, req.Variables.In)
	}
	d.mu.Unlock()
	switch op {
	case "registerRobot":
		_, _ = io.WriteString(w, `{"data":{"registerRobot":{"pool":"p","robot":{"name":"r1"}}}}`)
	case "claimTask":
		if n == 1 && d.claim != "" {
			_, _ = io.WriteString(w, d.claim)
			return
		}
		// A long poll that finds nothing, shortened.
		select {
		case <-r.Context().Done():
		case <-time.After(50 * time.Millisecond):
		}
		_, _ = io.WriteString(w, `{"data":{"claimTask":null}}`)
	case "heartbeat":
		_, _ = io.WriteString(w, `{"data":{"heartbeat":"2030-01-01T00:00:00Z"}}`)
	case "awaitStop":
		// Held open until the connection goes, as a daemon does.
		<-r.Context().Done()
	case "reportResult":
		_, _ = io.WriteString(w, `{"data":{"reportResult":true}}`)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func (d *fleetDaemon) count(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// gate runs until the test opens it.
type gate struct{ started, open chan struct{} }

func (g gate) Run(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
	close(g.started)
	select {
	case <-g.open:
		return json.RawMessage(`{"ok":true}`), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Daemon A hands the robot a task and dies while it runs: the task carries
// on, its heartbeats, stop poll and result go to daemon B, the robot then
// claims from B, and its log names the daemon it moved to.
func TestInFlightTaskSurvivesFailover(t *testing.T) {
	claim := fmt.Sprintf(`{"data":{"claimTask":{"taskID":"7","attempt":1,"deadline":%q,"process":"x","kind":"builtin","runner":"gate","maxDurationSeconds":3,"input":{}}}}`,
		time.Now().Add(time.Minute).Format(time.RFC3339))
	da := &fleetDaemon{claim: claim, calls: map[string]int{}}
	db := &fleetDaemon{calls: map[string]int{}}
	a, b := httptest.NewServer(da), httptest.NewServer(db)
	defer a.Close()
	defer b.Close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	g := gate{started: make(chan struct{}), open: make(chan struct{})}
	ag := &Agent{Client: gqlclient.NewFailover([]string{a.URL, b.URL}, "tok", log), Log: log,
		Runners: map[string]Runner{"gate": g}, PollWait: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	select {
	case <-g.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the task did not start")
	}
	// SIGKILL of daemon A: its connections drop, nothing listens.
	a.CloseClientConnections()
	a.Close()
	eventually(t, "heartbeats and the stop poll of the running task at B", func() bool {
		return db.count("heartbeat") > 0 && db.count("awaitStop") > 0
	})
	close(g.open)
	eventually(t, "the result at B", func() bool { return db.count("reportResult") == 1 })
	db.mu.Lock()
	rep := db.reports[0]
	db.mu.Unlock()
	if fmt.Sprint(rep["taskID"]) != "7" || rep["attempt"] != float64(1) || rep["success"] != true {
		t.Fatalf("report at B: %v", rep)
	}
	eventually(t, "claims at B", func() bool { return db.count("claimTask") > 0 })
	if da.count("reportResult") != 0 || db.count("registerRobot") != 0 {
		t.Fatalf("A got %d reports, B %d registrations", da.count("reportResult"), db.count("registerRobot"))
	}
	logMu.Lock()
	out := logs.String()
	logMu.Unlock()
	if !strings.Contains(out, "moving to the next one") || !strings.Contains(out, "to="+b.URL) {
		t.Fatalf("the log does not say the robot moved to B:\n%s", out)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Enrolment with several daemons: the first is down (a 503 from its
// proxy), the second enrols the machine, and the identity keeps both, in
// the order given; a refusal is final, the next daemon is not asked.
func TestEnrolAnyMovesOnAndKeepsEveryServer(t *testing.T) {
	var calls [2]int
	var mu sync.Mutex
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[0]++
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	refuse := false
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[1]++
		refusing := refuse
		mu.Unlock()
		if refusing {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":"join token used up"}`)
			return
		}
		_, _ = io.WriteString(w, `{"robot":"r1","pool":"p","token":"rpr_x"}`)
	}))
	defer up.Close()
	servers := []string{down.URL, up.URL}
	id, err := EnrolAny(context.Background(), nil, servers, robotwireEnrol(), nil)
	if err != nil || id.Robot != "r1" || id.Server != down.URL || strings.Join(id.Servers, " ") != down.URL+" "+up.URL {
		t.Fatalf("EnrolAny: %+v %v", id, err)
	}
	mu.Lock()
	refuse = true
	mu.Unlock()
	if _, err := EnrolAny(context.Background(), nil, []string{up.URL, down.URL}, robotwireEnrol(), nil); !errors.Is(err, ErrEnrolRefused) {
		t.Fatalf("a refusal: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != [2]int{1, 2} {
		t.Fatalf("calls per daemon %v, want [1 2]: the refusal must not move on", calls)
	}
}
