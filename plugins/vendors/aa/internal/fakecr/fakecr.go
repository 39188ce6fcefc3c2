// Package fakecr is a fake Automation Anywhere A360 Control Room for tests.
// It follows the published Control Room API (docs.automationanywhere.com):
// POST /v1/authentication with password or API key and the X-Authorization
// token; POST /v3/automations/deploy with fileId, runAsUserIds, poolIds and
// typed botInput; POST /v3/activity/list with eq/ne/gt/lt/substring filters
// combined by and/or, sort and offset/length paging; POST
// /v3/activity/manage; POST /v2/devices/list. Error bodies are
// {"code","details","message"}. Tests steer it: scripted status sequences
// per bot, rate limiting (429 with Retry-After), malformed replies,
// expired tokens.
package fakecr

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Bot is a bot file in the repository.
type Bot struct {
	FileID int64
	Name   string
	// Script is the sequence of activity statuses a deployment goes
	// through, one step per activity/list read that returns it.
	Script []string
	Output string // botOutVariables JSON of a completed run
	Msg    string // message of a failed run
}

// Device is a bot runner device.
type Device struct {
	ID       int64
	HostName string
	Status   string // CONNECTED | DISCONNECTED | ...
	User     string
}

// Deployment is a deploy the fake accepted.
type Deployment struct {
	ID, ActivityID string
	Bot            *Bot
	step           int
	Input          map[string]any
	RunAs          []int64
	Stopped        bool
	Start          time.Time
}

// Server is the fake.
type Server struct {
	*httptest.Server
	Username, Password, APIKey string

	mu        sync.Mutex
	tokens    map[string]bool
	bots      []*Bot
	devices   []*Device
	deps      []*Deployment
	throttle  int
	retryHdr  string
	malformed int
	Requests  []string
	now       func() time.Time
}

// New starts a fake that accepts one user.
func New(user, password, apiKey string) *Server {
	s := &Server{Username: user, Password: password, APIKey: apiKey, tokens: map[string]bool{}, now: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AddBot adds a bot file.
func (s *Server) AddBot(b Bot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(b.Script) == 0 {
		b.Script = []string{"QUEUED", "RUNNING", "COMPLETED"}
	}
	s.bots = append(s.bots, &b)
}

// AddDevice adds a device.
func (s *Server) AddDevice(d Device) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.devices = append(s.devices, &d)
}

// AddHistory adds n finished executions of bot fileID.
func (s *Server) AddHistory(fileID int64, n int, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.botLocked(fileID)
	for i := 0; i < n; i++ {
		d := &Deployment{ID: id(), ActivityID: id(), Bot: &Bot{FileID: b.FileID, Name: b.Name, Script: []string{status}, Msg: b.Msg, Output: b.Output}, Start: s.now().Add(-time.Duration(n-i) * time.Minute)}
		s.deps = append(s.deps, d)
	}
}

// Throttle answers the next n requests with 429 and this Retry-After.
func (s *Server) Throttle(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryHdr = n, retryAfter
}

// Malform answers the next n API requests with HTML.
func (s *Server) Malform(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.malformed = n
}

// ExpireTokens makes every issued token invalid, as an idle timeout does.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]bool{}
}

// Deployments returns copies of the accepted deployments.
func (s *Server) Deployments() []Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Deployment
	for _, d := range s.deps {
		out = append(out, *d)
	}
	return out
}

// Count counts requests whose "METHOD path" starts with prefix.
func (s *Server) Count(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.Requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func id() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func crErr(w http.ResponseWriter, code int, c, msg string) {
	writeJSON(w, code, map[string]string{"code": c, "details": "", "message": msg})
}

func (s *Server) botLocked(fileID int64) *Bot {
	for _, b := range s.bots {
		if b.FileID == fileID {
			return b
		}
	}
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests = append(s.Requests, r.Method+" "+r.URL.Path)
	if s.throttle > 0 {
		s.throttle--
		w.Header().Set("Retry-After", s.retryHdr)
		crErr(w, http.StatusTooManyRequests, "", "Too many requests")
		return
	}
	if r.Method != http.MethodPost {
		crErr(w, http.StatusMethodNotAllowed, "", "Method not allowed")
		return
	}
	if r.URL.Path == "/v1/authentication" {
		s.auth(w, r)
		return
	}
	if !s.tokens[r.Header.Get("X-Authorization")] {
		crErr(w, http.StatusUnauthorized, "UM1110", "Session expired or token is invalid")
		return
	}
	if s.malformed > 0 {
		s.malformed--
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Control Room is under maintenance</body></html>"))
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		crErr(w, http.StatusBadRequest, "", "Malformed JSON request body")
		return
	}
	switch r.URL.Path {
	case "/v3/automations/deploy":
		s.deploy(w, body)
	case "/v3/activity/list":
		s.activityList(w, body)
	case "/v3/activity/manage":
		s.manage(w, body)
	case "/v2/devices/list":
		s.deviceList(w, body)
	default:
		crErr(w, http.StatusNotFound, "", "Resource not found")
	}
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username, Password, APIKey string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		crErr(w, http.StatusBadRequest, "", "Malformed JSON request body")
		return
	}
	ok := in.Username == s.Username && ((in.Password != "" && in.Password == s.Password) || (in.APIKey != "" && in.APIKey == s.APIKey))
	if !ok {
		crErr(w, http.StatusUnauthorized, "UM1110", "Invalid credentials")
		return
	}
	tok := "eyJ" + strings.ReplaceAll(id(), "-", "")
	s.tokens[tok] = true
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "user": map[string]any{"id": 3, "username": in.Username, "licenseFeatures": []string{"RUNTIME"}}})
}

func num(v any) (int64, bool) {
	f, ok := v.(float64)
	return int64(f), ok && f == float64(int64(f))
}

func (s *Server) deploy(w http.ResponseWriter, body map[string]any) {
	fid, ok := num(body["fileId"])
	if !ok {
		crErr(w, http.StatusBadRequest, "", "fileId is required")
		return
	}
	b := s.botLocked(fid)
	if b == nil {
		crErr(w, http.StatusNotFound, "", fmt.Sprintf("File with id %d not found", fid))
		return
	}
	users, _ := body["runAsUserIds"].([]any)
	if len(users) == 0 {
		crErr(w, http.StatusBadRequest, "", "runAsUserIds must not be empty")
		return
	}
	in, _ := body["botInput"].(map[string]any)
	for k, v := range in {
		m, _ := v.(map[string]any)
		t, _ := m["type"].(string)
		switch t {
		case "STRING", "NUMBER", "BOOLEAN", "LIST", "DICTIONARY", "DATETIME":
		default:
			crErr(w, http.StatusBadRequest, "", fmt.Sprintf("botInput %q has an invalid type %q", k, t))
			return
		}
	}
	d := &Deployment{ID: id(), ActivityID: id(), Bot: b, Input: in, Start: s.now()}
	for _, u := range users {
		n, _ := num(u)
		d.RunAs = append(d.RunAs, n)
	}
	d.step = -1 // not visible in activity until the first read
	s.deps = append(s.deps, d)
	writeJSON(w, http.StatusOK, map[string]string{"deploymentId": d.ID})
}

func (d *Deployment) status() string {
	if d.Stopped {
		return "RUN_ABORTED"
	}
	if d.step < 0 {
		return "DEPLOYED"
	}
	return d.Bot.Script[d.step]
}

func (s *Server) entity(d *Deployment) map[string]any {
	e := map[string]any{"id": d.ActivityID, "deploymentId": d.ID, "automationName": d.Bot.Name, "fileName": d.Bot.Name,
		"filePath": "Automation Anywhere\\Bots\\" + d.Bot.Name, "type": "RUN_NOW", "status": d.status(),
		"startDateTime": d.Start.UTC().Format(time.RFC3339Nano), "command": "", "progress": 0, "deviceId": "7", "deviceName": "runner-1",
		"userName": "svc-runner", "message": ""}
	switch d.status() {
	case "COMPLETED":
		e["endDateTime"], e["progress"] = d.Start.Add(time.Minute).UTC().Format(time.RFC3339Nano), 100
		if d.Bot.Output != "" {
			e["botOutVariables"] = json.RawMessage(d.Bot.Output)
		}
	case "RUN_FAILED", "RUN_ABORTED", "RUN_TIMED_OUT", "DEPLOY_FAILED":
		e["endDateTime"], e["message"] = d.Start.Add(time.Minute).UTC().Format(time.RFC3339Nano), d.Bot.Msg
		if d.Stopped {
			e["message"] = "Stopped by user"
		}
	}
	return e
}

// match evaluates a Control Room filter on an activity entity.
func match(f map[string]any, e map[string]any) (bool, error) {
	op, _ := f["operator"].(string)
	switch op {
	case "and", "or":
		ops, _ := f["operands"].([]any)
		if len(ops) == 0 {
			return false, fmt.Errorf("operator %q needs operands", op)
		}
		for _, o := range ops {
			om, _ := o.(map[string]any)
			ok, err := match(om, e)
			if err != nil {
				return false, err
			}
			if op == "and" && !ok {
				return false, nil
			}
			if op == "or" && ok {
				return true, nil
			}
		}
		return op == "and", nil
	case "eq", "ne", "gt", "lt", "substring":
		field, _ := f["field"].(string)
		want, _ := f["value"].(string)
		if _, known := e[field]; !known && field != "endDateTime" {
			return false, fmt.Errorf("unknown filter field %q", field)
		}
		have := fmt.Sprint(e[field])
		switch op {
		case "eq":
			return have == want, nil
		case "ne":
			return have != want, nil
		case "gt":
			return have > want, nil
		case "lt":
			return have < want, nil
		}
		return strings.Contains(have, want), nil
	}
	return false, fmt.Errorf("unknown filter operator %q", op)
}

func page(body map[string]any) (int, int) {
	p, _ := body["page"].(map[string]any)
	off, _ := num(p["offset"])
	n, ok := num(p["length"])
	if !ok || n <= 0 {
		n = 100
	}
	return int(off), int(min(n, 200))
}

func (s *Server) activityList(w http.ResponseWriter, body map[string]any) {
	var all []map[string]any
	for _, d := range s.deps {
		all = append(all, s.entity(d))
	}
	items := all
	if f, ok := body["filter"].(map[string]any); ok && len(f) > 0 {
		items = nil
		for _, e := range all {
			ok, err := match(f, e)
			if err != nil {
				crErr(w, http.StatusBadRequest, "", err.Error())
				return
			}
			if ok {
				items = append(items, e)
			}
		}
	}
	if srt, ok := body["sort"].([]any); ok && len(srt) > 0 {
		sm, _ := srt[0].(map[string]any)
		field, _ := sm["field"].(string)
		desc := sm["direction"] == "desc"
		sort.SliceStable(items, func(i, j int) bool {
			a, b := fmt.Sprint(items[i][field]), fmt.Sprint(items[j][field])
			if desc {
				return a > b
			}
			return a < b
		})
	}
	off, n := page(body)
	total := len(items)
	if off > len(items) {
		off = len(items)
	}
	items = items[off:]
	if len(items) > n {
		items = items[:n]
	}
	// A read moves each returned deployment one status on.
	for _, e := range items {
		for _, d := range s.deps {
			if d.ID == e["deploymentId"] && !d.Stopped && d.step < len(d.Bot.Script)-1 {
				d.step++
			}
		}
	}
	if items == nil {
		items = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"page": map[string]int{"offset": off, "total": len(all), "totalFilter": total}, "list": items})
}

func (s *Server) manage(w http.ResponseWriter, body map[string]any) {
	exec, _ := body["executionId"].(string)
	action, _ := body["action"].(string)
	if action != "STOP" && action != "PAUSE" && action != "RESUME" {
		crErr(w, http.StatusBadRequest, "", "Invalid action "+action)
		return
	}
	for _, d := range s.deps {
		if d.ActivityID == exec {
			if action == "STOP" {
				d.Stopped = true
			}
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	crErr(w, http.StatusNotFound, "", "Execution not found")
}

func (s *Server) deviceList(w http.ResponseWriter, body map[string]any) {
	off, n := page(body)
	var list []map[string]any
	for _, d := range s.devices {
		list = append(list, map[string]any{"id": d.ID, "hostName": d.HostName, "status": d.Status, "type": "BOT_RUNNER",
			"defaultUsers": []map[string]any{{"id": d.ID + 100, "username": d.User}}})
	}
	total := len(list)
	if off > len(list) {
		off = len(list)
	}
	list = list[off:]
	if len(list) > n {
		list = list[:n]
	}
	if list == nil {
		list = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"page": map[string]int{"offset": off, "total": total, "totalFilter": total}, "list": list})
}
