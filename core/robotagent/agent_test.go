package robotagent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

// fakeReports is a daemon that answers every reportResult with answer and
// keeps what it was sent.
type fakeReports struct {
	mu     sync.Mutex
	inputs []map[string]any
	answer func(n int, in map[string]any) (status int, body string)
}

func (f *fakeReports) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var req struct {
		Variables struct {
			In map[string]any `json:"in"`
		} `json:"variables"`
	}
	_ = json.Unmarshal(raw, &req)
	f.mu.Lock()
	f.inputs = append(f.inputs, req.Variables.In)
	n := len(f.inputs)
	f.mu.Unlock()
	status, body := f.answer(n, req.Variables.In)
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func reportWith(t *testing.T, answer func(n int, in map[string]any) (int, string)) []map[string]any {
	t.Helper()
	f := &fakeReports{answer: answer}
	srv := httptest.NewServer(f)
	defer srv.Close()
	a := &Agent{Client: gqlclient.New(srv.URL, "tok"), Log: slog.New(slog.DiscardHandler)}
	c := &robotwire.Claim{TaskID: 7, Attempt: 1, Deadline: time.Now().Add(time.Minute)}
	in := robotwire.Report{TaskID: 7, Attempt: 1, Success: true, Output: json.RawMessage(`{"big":true}`)}
	// A looping agent would hang here until the attempt's deadline.
	a.report(context.Background(), a.Log, c, in)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inputs
}

// A result the daemon refuses has already failed the attempt there: the
// agent sends it once and moves on.
func TestReportRefusedIsNotResent(t *testing.T) {
	got := reportWith(t, func(int, map[string]any) (int, string) {
		return http.StatusOK, `{"errors":[{"message":"result refused: output of 2000000 bytes exceeds the limit of 1048576 bytes","extensions":{"code":"RESULT_REFUSED"}}],"data":null}`
	})
	if len(got) != 1 {
		t.Fatalf("%d reports sent, want 1", len(got))
	}
}

// A request refused before it reaches the queue (a body limit's 413) would
// leave the attempt running until its deadline: the agent reports the
// attempt as an execution error instead, once.
func TestReportRejectedRequestFallsBackToFailure(t *testing.T) {
	got := reportWith(t, func(n int, in map[string]any) (int, string) {
		if in["success"] == true {
			return http.StatusRequestEntityTooLarge, "request body too large"
		}
		return http.StatusOK, `{"data":{"reportResult":true}}`
	})
	if len(got) != 2 {
		t.Fatalf("%d reports sent, want 2 (the result, then the failure)", len(got))
	}
	if f := got[1]; f["success"] != false || f["errorClass"] != "EXECUTION" || f["message"] == "" {
		t.Fatalf("fallback report: %v", f)
	}
	// A daemon that refuses the failure too is not asked a third time.
	got = reportWith(t, func(int, map[string]any) (int, string) { return http.StatusRequestEntityTooLarge, "no" })
	if len(got) != 2 {
		t.Fatalf("%d reports sent, want 2", len(got))
	}
}
