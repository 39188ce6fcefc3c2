package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last: %s)", timeout, what, last)
}

// procs lists processes whose command line contains every needle.
func procs(needles ...string) map[int]int { // pid -> ppid
	out := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(raw), "\x00", " ")
		match := true
		for _, n := range needles {
			if !strings.Contains(cmd, n) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[0] != "Z" {
			ppid, _ := strconv.Atoi(f[1])
			out[pid] = ppid
		}
	}
	return out
}

type health struct {
	Status    string `json:"status"`
	Providers map[string]struct {
		Healthy  bool `json:"healthy"`
		Restarts int  `json:"restarts"`
	} `json:"providers"`
}

// getHealth reads /healthz; its details (providers, Vault) need an admin
// token, without one only the status is answered.
func getHealth(base, token string) (health, int, error) {
	var h health
	req, err := http.NewRequest(http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return h, 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return h, 0, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, resp.StatusCode, err
}

// TestEndToEnd boots `rpacloud dev`, lets the local provider plugin start
// two robot processes, pushes a batch of 50 tasks through GraphQL while a
// websocket subscription watches, then crashes the provider plugin and
// checks the daemon keeps serving and brings it back.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := sdktest.RpacloudBinary(t)
	dir := t.TempDir()
	addr := sdktest.FreeAddr(t)
	base := "http://" + addr
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	daemon := exec.Command(bin, "dev", "--data-dir", dir, "--listen", addr)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = daemon.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = daemon.Process.Kill()
				<-exited
			}
		}
		for pid := range procs("robot", "--server", base) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
			t.Logf("daemon log:\n%s", b)
		}
	}()

	eventually(t, 90*time.Second, "the daemon to serve /healthz", func() (bool, string) {
		_, code, err := getHealth(base, "")
		return err == nil && code == 200, fmt.Sprint(code, err)
	})
	for _, path := range []string{"/", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	raw, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := gqlclient.New(base, strings.TrimSpace(string(raw)))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Unauthenticated requests get 401.
	resp, err := http.Post(base+"/graphql", "application/json", strings.NewReader(`{"query":"{me{name}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated request: HTTP %d, want 401", resp.StatusCode)
	}

	// The local provider starts the pool's two permanent robots, each its
	// own OS process.
	type status struct {
		PoolStatus []struct {
			Robots, Idle    int
			ProviderHealthy bool `json:"providerHealthy"`
		} `json:"poolStatus"`
	}
	eventually(t, 90*time.Second, "two idle robots", func() (bool, string) {
		var st status
		if err := admin.Do(ctx, `{poolStatus{robots idle providerHealthy}}`, nil, &st); err != nil {
			return false, err.Error()
		}
		return len(st.PoolStatus) == 1 && st.PoolStatus[0].Robots == 2 && st.PoolStatus[0].Idle == 2, fmt.Sprintf("%+v", st)
	})
	robotPIDs := procs("robot", "--server", base)
	if len(robotPIDs) != 2 {
		t.Fatalf("robot processes: %v, want 2", robotPIDs)
	}
	for pid := range robotPIDs {
		if pid == daemon.Process.Pid {
			t.Fatal("a robot runs inside the daemon process")
		}
	}

	// A live subscription over graphql-transport-ws.
	sub := subscribe(t, ctx, "ws://"+addr+"/graphql", admin.Token)
	defer sub.close()

	inputs := make([]map[string]any, 50)
	for i := range inputs {
		inputs[i] = map[string]any{"n": i, "sleep_ms": 20}
	}
	var submitted struct {
		SubmitBatch struct {
			ID    string `json:"id"`
			Total int    `json:"total"`
		} `json:"submitBatch"`
	}
	err = admin.Do(ctx, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id total}}`,
		map[string]any{"in": map[string]any{"process": "echo", "customer": "demo", "inputs": inputs}}, &submitted)
	if err != nil || submitted.SubmitBatch.Total != 50 {
		t.Fatalf("submitBatch: %+v %v", submitted, err)
	}
	eventually(t, 2*time.Minute, "the batch to finish", func() (bool, string) {
		var out struct {
			Node batchView `json:"node"`
		}
		if err := admin.Do(ctx, batchQ, map[string]any{"id": submitted.SubmitBatch.ID}, &out); err != nil {
			return false, err.Error()
		}
		return out.Node.Stack == "finished", fmt.Sprintf("%+v", out.Node)
	})
	var done struct {
		Tasks struct {
			TotalCount int `json:"totalCount"`
		} `json:"tasks"`
	}
	if err := admin.Do(ctx, `query($b:ID!){tasks(where:{batchID:$b,state:succeeded}){totalCount}}`, map[string]any{"b": submitted.SubmitBatch.ID}, &done); err != nil || done.Tasks.TotalCount != 50 {
		t.Fatalf("succeeded tasks: %+v %v", done, err)
	}
	eventually(t, 10*time.Second, "50 task.succeeded events on the subscription", func() (bool, string) {
		n := sub.count("task.succeeded")
		return n == 50, fmt.Sprint(n)
	})
	// The daemon counted the work it did, labelled by pool, process and
	// outcome (the one daemon did it all): throughput for Grafana.
	for series, want := range map[string]float64{
		`rpacloud_tasks_finished_total{outcome="succeeded",pool="default",process="echo"}`:        50,
		`rpacloud_attempts_finished_total{outcome="succeeded",pool="default",process="echo"}`:     50,
		`rpacloud_task_queue_wait_seconds_count{pool="default",process="echo"}`:                   50,
		`rpacloud_task_duration_seconds_count{outcome="succeeded",pool="default",process="echo"}`: 50,
	} {
		if got, ok := scrape(t, base, series); !ok || got != want {
			t.Errorf("/metrics %s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if got, _ := scrape(t, base, `rpacloud_claim_duration_seconds_count{pool="default",result="task"}`); got < 50 {
		t.Errorf("claims observed that handed out a task: %v, want at least 50", got)
	}

	// A viewer may read but not mutate.
	var tok struct {
		CreateToken struct {
			Secret string `json:"secret"`
		} `json:"createToken"`
	}
	if err := admin.Do(ctx, `mutation{createToken(input:{name:"wall",role:VIEWER}){secret}}`, nil, &tok); err != nil {
		t.Fatal(err)
	}
	wall := gqlclient.New(base, tok.CreateToken.Secret)
	if err := wall.Do(ctx, `{tasks(first:1){totalCount}}`, nil, nil); err != nil {
		t.Fatalf("viewer read: %v", err)
	}
	err = wall.Do(ctx, `mutation{submitBatch(input:{process:"echo",customer:"demo",inputs:[{}]}){id}}`, nil, nil)
	if gerr, ok := err.(gqlclient.Errors); !ok || !gerr.HasCode("FORBIDDEN") {
		t.Fatalf("viewer mutation: %v, want FORBIDDEN", err)
	}

	// Crash the provider plugin: the daemon keeps serving, the plugin
	// comes back, the robots (VMs) are not touched.
	// Other tests of this package run daemons with local providers at
	// the same time: this daemon's plugin is the one that is its child.
	all := procs("plugin", "provider", "local")
	plugins := map[int]int{}
	for pid, ppid := range all {
		if ppid == daemon.Process.Pid {
			plugins[pid] = ppid
		}
	}
	if len(plugins) != 1 {
		t.Fatalf("provider plugin processes of the daemon %d: %v (all: %v)", daemon.Process.Pid, plugins, all)
	}
	for pid := range plugins {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 90*time.Second, "the provider plugin to be restarted", func() (bool, string) {
		h, code, err := getHealth(base, admin.Token)
		if err != nil || code != 200 {
			return false, fmt.Sprint(code, err)
		}
		p := h.Providers["local"]
		return p.Healthy && p.Restarts >= 1, fmt.Sprintf("%+v", h)
	})
	if got, _ := scrape(t, base, `rpacloud_plugin_restarts_total{kind="provider",name="local",plugin="local"}`); got < 1 {
		t.Errorf("/metrics counts %v restarts of the provider plugin, want at least 1", got)
	}
	if err := admin.Do(ctx, `{me{name}}`, nil, nil); err != nil {
		t.Fatalf("daemon after plugin crash: %v", err)
	}
	for pid := range robotPIDs {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Fatalf("robot %d died with the plugin: %v", pid, err)
		}
	}

	// Graceful shutdown ends the local robots too (dev mode).
	sub.close()
	stopped = true
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("daemon did not stop within 45s of SIGTERM")
	}
	eventually(t, 20*time.Second, "robots to stop with the dev daemon", func() (bool, string) {
		left := procs("robot", "--server", base)
		return len(left) == 0, fmt.Sprint(left)
	})
}

type subscription struct {
	conn   *websocket.Conn
	mu     sync.Mutex
	seen   map[string]map[string]bool // type -> task IDs
	all    int                        // events received, batch events included
	done   chan struct{}
	closer sync.Once
}

func subscribe(t *testing.T, ctx context.Context, url, token string) *subscription {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	return subscribeWith(t, ctx, d, url, token, nil)
}

// subscribeWith is subscribe through d (TLS, a source address) with the
// upgrade request's extra headers (a browser's Origin).
func subscribeWith(t *testing.T, ctx context.Context, d websocket.Dialer, url, token string, hdr http.Header) *subscription {
	t.Helper()
	conn, resp, err := d.DialContext(ctx, url, hdr)
	if err != nil {
		t.Fatalf("websocket dial: %v", err)
	}
	resp.Body.Close()
	s := &subscription{conn: conn, seen: map[string]map[string]bool{}, done: make(chan struct{})}
	must := func(v any) {
		if err := conn.WriteJSON(v); err != nil {
			t.Fatalf("websocket write: %v", err)
		}
	}
	must(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	var ack struct{ Type string }
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %+v %v", ack, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	must(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription{taskEvents{type taskID}}"}})
	go func() {
		defer close(s.done)
		for {
			var msg struct {
				Type    string `json:"type"`
				Payload struct {
					Data struct {
						TaskEvents struct {
							Type   string  `json:"type"`
							TaskID *string `json:"taskID"`
						} `json:"taskEvents"`
					} `json:"data"`
				} `json:"payload"`
			}
			if err := conn.ReadJSON(&msg); err != nil {
				return
			}
			switch msg.Type {
			case "ping":
				s.mu.Lock()
				_ = conn.WriteJSON(map[string]string{"type": "pong"})
				s.mu.Unlock()
			case "next":
				s.mu.Lock()
				s.all++
				s.mu.Unlock()
				e := msg.Payload.Data.TaskEvents
				if e.TaskID == nil {
					continue
				}
				s.mu.Lock()
				if s.seen[e.Type] == nil {
					s.seen[e.Type] = map[string]bool{}
				}
				s.seen[e.Type][*e.TaskID] = true
				s.mu.Unlock()
			}
		}
	}()
	return s
}

func (s *subscription) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen[typ])
}

// total is the number of events received, of every type.
func (s *subscription) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all
}

func (s *subscription) close() {
	s.closer.Do(func() {
		s.mu.Lock()
		_ = s.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		s.mu.Unlock()
		_ = s.conn.Close()
		<-s.done
	})
}

// scrape reads one series' value from the daemon's /metrics (Prometheus
// text format, labels sorted by name as client_golang writes them).
func scrape(t *testing.T, base, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
