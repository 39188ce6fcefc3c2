// Package fakecr is a fake Robocorp Control Room API v1 for the plugin's
// tests, faithful to what the plugin uses as Control Room documents it
// (https://robocorp.com/api): the RC-WSKEY API key, workspace-scoped
// paths, process runs started with work-item payloads that go through
// new → in_progress → completed (or unresolved when work items fail),
// stop, workers, pages of {"data", "has_more", "next"} with limit and an
// opaque cursor, JSON errors {"error", "message"}, and 429 with
// Retry-After when asked to throttle.
package fakecr

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process is a Control Room process. Script is the states a run of it
// goes through, one per read of the run; default new, in_progress,
// completed.
type Process struct {
	ID, Name string
	Script   []string
}

// Run is a process run as the fake keeps it.
type Run struct {
	ID        string
	Process   string // process ID
	Step      int    // index into the process's script
	Payloads  []json.RawMessage
	StartedBy string // "api", "scheduler", "user"
	Fixed     string // a state the run stays in instead of its script
	Created   time.Time
	Stopped   bool
}

// Worker is a Control Room worker.
type Worker struct {
	ID, Name, State string
}

// CR is the fake.
type CR struct {
	APIKey, Workspace string
	// ThrottleEvery answers every n-th request 429 with Retry-After: 0;
	// 0 never.
	ThrottleEvery int

	mu        sync.Mutex
	processes map[string]*Process
	runs      []*Run
	workers   []Worker
	requests  int
	now       func() time.Time
}

// New returns a fake Control Room for one workspace and API key.
func New(apiKey, workspace string) *CR {
	return &CR{APIKey: apiKey, Workspace: workspace, processes: map[string]*Process{}, now: time.Now}
}

// AddProcess adds a process.
func (c *CR) AddProcess(p Process) {
	if len(p.Script) == 0 {
		p.Script = []string{"new", "in_progress", "completed"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.processes[p.ID] = &p
}

// AddWorker adds a worker.
func (c *CR) AddWorker(w Worker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workers = append(c.workers, w)
}

// AddRuns adds n runs of process that Control Room's own scheduler
// started, staying in state.
func (c *CR) AddRuns(process string, n int, state string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range n {
		c.runs = append(c.runs, &Run{ID: c.newID(), Process: process, Fixed: state, StartedBy: "scheduler", Created: c.now()})
	}
}

// Runs returns a copy of the runs, oldest first.
func (c *CR) Runs() []Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Run, len(c.runs))
	for i, r := range c.runs {
		out[i] = *r
	}
	return out
}

func (c *CR) newID() string { return fmt.Sprintf("run-%04d", len(c.runs)+1) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"error": code, "message": msg})
}

// ServeHTTP serves the API under /api/v1.
func (c *CR) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	throttle := c.ThrottleEvery > 0 && c.requests%c.ThrottleEvery == 0
	c.mu.Unlock()
	if throttle {
		w.Header().Set("Retry-After", "0")
		fail(w, http.StatusTooManyRequests, "rate_limited", "Too many requests")
		return
	}
	if r.Header.Get("Authorization") != "RC-WSKEY "+c.APIKey {
		fail(w, http.StatusUnauthorized, "unauthorized", "API key missing or invalid")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/workspaces/")
	if !ok {
		fail(w, http.StatusNotFound, "not_found", "No such endpoint")
		return
	}
	parts := strings.Split(rest, "/")
	if parts[0] != c.Workspace {
		fail(w, http.StatusForbidden, "forbidden", "The API key has no access to workspace "+parts[0])
		return
	}
	parts = parts[1:]
	switch {
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "processes" && parts[2] == "process-runs":
		c.start(w, r, parts[1])
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "process-runs":
		c.listRuns(w, r)
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "process-runs":
		c.getRun(w, parts[1])
	case r.Method == http.MethodPost && len(parts) == 3 && parts[0] == "process-runs" && parts[2] == "stop":
		c.stop(w, r, parts[1])
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "workers":
		c.listWorkers(w, r)
	default:
		fail(w, http.StatusNotFound, "not_found", "No such endpoint")
	}
}

func (c *CR) start(w http.ResponseWriter, r *http.Request, processID string) {
	var body struct {
		Type     string            `json:"type"`
		Payloads []json.RawMessage `json:"payloads"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
		fail(w, http.StatusBadRequest, "invalid_body", "Request body is not valid JSON")
		return
	}
	if body.Type != "with_payloads" || len(body.Payloads) == 0 {
		fail(w, http.StatusBadRequest, "invalid_body", `this fake supports {"type": "with_payloads", "payloads": [...]} only`)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.processes[processID] == nil {
		fail(w, http.StatusNotFound, "not_found", "Process "+processID+" not found")
		return
	}
	run := &Run{ID: c.newID(), Process: processID, Payloads: body.Payloads, StartedBy: "api", Created: c.now()}
	c.runs = append(c.runs, run)
	writeJSON(w, http.StatusOK, map[string]string{"id": run.ID})
}

func (c *CR) find(id string) *Run {
	for _, r := range c.runs {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// resource is ProcessRunResource; mu held.
func (c *CR) resource(r *Run) map[string]any {
	p := c.processes[r.Process]
	state := p.Script[min(r.Step, len(p.Script)-1)]
	if r.Fixed != "" {
		state = r.Fixed
	}
	if r.Stopped {
		state = "stopped"
	}
	created := r.Created.UTC().Format(time.RFC3339Nano)
	res := map[string]any{
		"id": r.ID, "state": state, "created_at": created, "started_at": nil, "ended_at": nil,
		"process":    map[string]string{"id": p.ID, "name": p.Name},
		"started_by": map[string]any{"type": r.StartedBy, "details": nil},
		"duration":   nil,
	}
	if state != "new" {
		res["started_at"] = created
	}
	if state == "completed" || state == "unresolved" || state == "stopped" {
		res["ended_at"] = r.Created.Add(time.Second).UTC().Format(time.RFC3339Nano)
		res["duration"] = 1
	}
	return res
}

func (c *CR) getRun(w http.ResponseWriter, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.find(id)
	if r == nil {
		fail(w, http.StatusNotFound, "not_found", "Process run "+id+" not found")
		return
	}
	res := c.resource(r)
	if p := c.processes[r.Process]; r.Step < len(p.Script)-1 && !r.Stopped {
		r.Step++ // each read moves a started run one state on
	}
	writeJSON(w, http.StatusOK, res)
}

func (c *CR) stop(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		Done      *bool `json:"set_remaining_work_items_as_done"`
		Terminate *bool `json:"terminate_ongoing_activity_runs"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || body.Done == nil || body.Terminate == nil {
		fail(w, http.StatusBadRequest, "invalid_body", "set_remaining_work_items_as_done and terminate_ongoing_activity_runs are required")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.find(id)
	if run == nil {
		fail(w, http.StatusNotFound, "not_found", "Process run "+id+" not found")
		return
	}
	run.Stopped = true
	writeJSON(w, http.StatusOK, map[string]any{"id": id})
}

// pageOf cuts one page of n items; the cursor is an opaque offset.
func pageOf(r *http.Request, n int) (from, to int, next *string, err error) {
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, nil, fmt.Errorf("limit must be 1 to 1000")
		}
	}
	if s := r.URL.Query().Get("cursor"); s != "" {
		if from, err = strconv.Atoi(strings.TrimPrefix(s, "c")); err != nil || from < 0 || !strings.HasPrefix(s, "c") {
			return 0, 0, nil, fmt.Errorf("invalid cursor")
		}
	}
	from = min(from, n)
	to = min(from+limit, n)
	if to < n {
		q := r.URL.Query()
		q.Set("cursor", "c"+strconv.Itoa(to))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		s := u.String()
		next = &s
	}
	return from, to, next, nil
}

func (c *CR) listRuns(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	runs := append([]*Run(nil), c.runs...)
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Created.After(runs[j].Created) })
	from, to, next, err := pageOf(r, len(runs))
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	data := make([]map[string]any, 0, to-from)
	for _, run := range runs[from:to] {
		data = append(data, c.resource(run))
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": next != nil, "next": next})
}

func (c *CR) listWorkers(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	from, to, next, err := pageOf(r, len(c.workers))
	if err != nil {
		fail(w, http.StatusBadRequest, "invalid_query", err.Error())
		return
	}
	data := make([]map[string]any, 0, to-from)
	for _, wk := range c.workers[from:to] {
		data = append(data, map[string]any{"id": wk.ID, "name": wk.Name, "state": wk.State})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": next != nil, "next": next})
}
