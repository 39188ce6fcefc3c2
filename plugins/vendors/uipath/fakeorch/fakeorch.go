// Package fakeorch is a fake UiPath Orchestrator for tests. It follows the
// published API (docs.uipath.com Orchestrator API guide; UiPath's own
// clients): the identity server's client-credentials token endpoint, the
// folder header, the OData entities Releases, Jobs, Robots and Sessions with
// $filter/$top/$skip/$orderby/$count, StartJobs and StopJobs, the JobState
// names, and its error bodies. Tests steer it: scripted job state
// sequences per release, rate limiting (429 with Retry-After), malformed
// replies, revoked tokens.
package fakeorch

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Release is a published process in the folder.
type Release struct {
	Key, Name, ProcessKey string
	// Script is the sequence of states a job of this release goes
	// through, one step per GET of the job; the last one stays.
	Script []string
	Info   string // the job's Info when it ends (e.g. a fault message)
	Output string // OutputArguments of a successful job
	// IgnoresSoftStop is a workflow that never checks UiPath's stop flag
	// (ShouldStop): a SoftStop leaves its job Stopping and running; only
	// a Kill ends it.
	IgnoresSoftStop bool
}

// Session is an unattended robot session.
type Session struct {
	ID             int64
	RobotID        int64
	RobotName      string
	MachineName    string
	State          string // Available | Busy | Disconnected | Unknown
	IsUnresponsive bool
}

// Job is a job the fake started.
type Job struct {
	ID           int64
	Key          string
	Release      *Release
	step         int
	Input        string
	Strategy     string
	RobotIDs     []int64
	Stopped      string // the StopJobs strategy, if stopped
	SoftStopped  bool   // a SoftStop its release ignores was asked for
	CreationTime time.Time
	StartTime    time.Time
	EndTime      time.Time
	RobotName    string
}

// Server is the fake.
type Server struct {
	*httptest.Server
	ClientID, ClientSecret string
	FolderID               int64
	// FolderPath is the folder's fully qualified name, which clients may
	// send as X-UIPATH-FolderPath instead of its ID.
	FolderPath    string
	TokenLifetime time.Duration

	mu        sync.Mutex
	tokens    map[string]time.Time
	releases  []*Release
	jobs      []*Job
	sessions  []*Session
	nextJob   int64
	throttle  int
	retryHdr  string
	malformed int
	Requests  []string // "METHOD path?query", in order
	now       func() time.Time
}

// New starts a fake with one folder and the given client credentials.
func New(clientID, clientSecret string, folderID int64) *Server {
	s := &Server{ClientID: clientID, ClientSecret: clientSecret, FolderID: folderID, TokenLifetime: time.Hour,
		tokens: map[string]time.Time{}, nextJob: 1000, now: time.Now}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// AddRelease publishes a process.
func (s *Server) AddRelease(r Release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(r.Script) == 0 {
		r.Script = []string{"Pending", "Running", "Successful"}
	}
	s.releases = append(s.releases, &r)
}

// AddSession adds a robot session.
func (s *Server) AddSession(ss Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = append(s.sessions, &ss)
}

// AddJobs creates n finished jobs of release name, for paging tests.
func (s *Server) AddJobs(name string, n int, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.releaseLocked(name)
	for i := 0; i < n; i++ {
		s.nextJob++
		j := &Job{ID: s.nextJob, Key: guid(), Release: r, CreationTime: s.now().Add(time.Duration(i) * time.Second)}
		j.step = len(r.Script) - 1
		for k, st := range r.Script {
			if st == state {
				j.step = k
			}
		}
		s.jobs = append(s.jobs, j)
	}
}

// Throttle answers the next n requests with 429 and this Retry-After.
func (s *Server) Throttle(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryHdr = n, retryAfter
}

// Malform answers the next n OData requests with HTML instead of JSON, as
// a proxy's error page or a maintenance page does.
func (s *Server) Malform(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.malformed = n
}

// RevokeTokens invalidates every issued token.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// Jobs returns a copy of the jobs started.
func (s *Server) Jobs() []Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Job, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, *j)
	}
	return out
}

// TokenRequests counts requests to the token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.Requests {
		if strings.HasPrefix(r, "POST /identity_/connect/token") {
			n++
		}
	}
	return n
}

func guid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// odataErr is Orchestrator's error body.
func odataErr(w http.ResponseWriter, code int, msg string, errorCode int) {
	writeJSON(w, code, map[string]any{"message": msg, "errorCode": errorCode, "traceId": guid()})
}

var jobByID = regexp.MustCompile(`^/odata/Jobs\((\d+)\)$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests = append(s.Requests, r.Method+" "+r.URL.RequestURI())
	if s.throttle > 0 {
		s.throttle--
		w.Header().Set("Retry-After", s.retryHdr)
		odataErr(w, http.StatusTooManyRequests, "Too many requests.", 0)
		return
	}
	if r.URL.Path == "/identity_/connect/token" && r.Method == http.MethodPost {
		s.token(w, r)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/odata/") {
		http.NotFound(w, r)
		return
	}
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if exp, ok := s.tokens[tok]; !ok || s.now().After(exp) {
		odataErr(w, http.StatusUnauthorized, "You are not authenticated!", 0)
		return
	}
	if s.malformed > 0 {
		s.malformed--
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		return
	}
	if r.URL.Path != "/odata/Sessions" {
		switch fid := r.Header.Get("X-UIPATH-OrganizationUnitId"); fid {
		case "":
			switch path := r.Header.Get("X-UIPATH-FolderPath"); {
			case path == "":
				odataErr(w, http.StatusBadRequest, "A folder is required for this action.", 1101)
				return
			case s.FolderPath == "" || path != s.FolderPath:
				odataErr(w, http.StatusBadRequest, "Folder does not exist or the user does not have access to the folder.", 1100)
				return
			}
		case strconv.FormatInt(s.FolderID, 10):
		default:
			odataErr(w, http.StatusBadRequest, "Folder does not exist or the user does not have access to the folder.", 1100)
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/odata/Releases":
		s.list(w, r, "UiPath.Server.Configuration.OData.ReleaseDto", s.releaseEntities())
	case r.Method == http.MethodGet && r.URL.Path == "/odata/Jobs":
		s.list(w, r, "UiPath.Server.Configuration.OData.JobDto", s.jobEntities())
	case r.Method == http.MethodGet && r.URL.Path == "/odata/Robots":
		s.list(w, r, "UiPath.Server.Configuration.OData.RobotDto", s.robotEntities())
	case r.Method == http.MethodGet && r.URL.Path == "/odata/Sessions":
		s.list(w, r, "UiPath.Server.Configuration.OData.SessionDto", s.sessionEntities())
	case r.Method == http.MethodGet && jobByID.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(jobByID.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		for _, j := range s.jobs {
			if j.ID == id {
				s.advance(j)
				writeJSON(w, http.StatusOK, s.jobEntity(j))
				return
			}
		}
		odataErr(w, http.StatusNotFound, "Job does not exist.", 1002)
	case r.Method == http.MethodPost && r.URL.Path == "/odata/Jobs/UiPath.Server.Configuration.OData.StartJobs":
		s.startJobs(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/odata/Jobs/UiPath.Server.Configuration.OData.StopJobs":
		s.stopJobs(w, r)
	default:
		odataErr(w, http.StatusNotFound, "No HTTP resource was found that matches the request URI.", 0)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.PostForm.Get("client_id") != s.ClientID || r.PostForm.Get("client_secret") != s.ClientSecret {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_client"})
		return
	}
	tok := guid()
	s.tokens[tok] = s.now().Add(s.TokenLifetime)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer",
		"expires_in": int(s.TokenLifetime / time.Second), "scope": r.PostForm.Get("scope")})
}

func (s *Server) releaseLocked(name string) *Release {
	for _, r := range s.releases {
		if r.Name == name || r.Key == name {
			return r
		}
	}
	return nil
}

func (s *Server) advance(j *Job) {
	if j.Stopped != "" {
		return
	}
	if j.step < len(j.Release.Script)-1 {
		j.step++
		switch j.Release.Script[j.step] {
		case "Running":
			if j.StartTime.IsZero() {
				j.StartTime = s.now()
			}
		case "Successful", "Faulted", "Stopped":
			j.EndTime = s.now()
		}
	}
}

func (j *Job) state() string {
	if j.Stopped != "" {
		return "Stopped"
	}
	st := j.Release.Script[j.step]
	if j.SoftStopped && (st == "Pending" || st == "Running") {
		return "Stopping"
	}
	return st
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *Server) jobEntity(j *Job) map[string]any {
	e := map[string]any{
		"Id": j.ID, "Key": j.Key, "State": j.state(), "Source": "Manual", "SourceType": "Manual",
		"CreationTime": ts(j.CreationTime), "StartTime": ts(j.StartTime), "EndTime": ts(j.EndTime),
		"ReleaseName": j.Release.Name, "Type": "Unattended", "InputArguments": j.Input, "OutputArguments": nil,
		"Info": nil, "HostMachineName": nil, "BatchExecutionKey": guid(), "StartingScheduleId": nil,
	}
	if j.RobotName != "" && j.state() != "Pending" {
		e["HostMachineName"] = j.RobotName + "-VM"
		e["Robot"] = map[string]any{"Name": j.RobotName}
	}
	switch j.state() {
	case "Successful":
		e["Info"] = "Job completed"
		if j.Release.Output != "" {
			e["OutputArguments"] = j.Release.Output
		}
	case "Faulted", "Stopped":
		e["Info"] = j.Release.Info
		if j.Stopped != "" {
			e["Info"] = "Job stopped by user (" + j.Stopped + ")"
		}
	}
	return e
}

func (s *Server) jobEntities() []map[string]any {
	out := make([]map[string]any, 0, len(s.jobs))
	for _, j := range s.jobs {
		e := s.jobEntity(j)
		e["CreationTime"] = j.CreationTime // typed, for $filter; re-rendered below
		out = append(out, e)
	}
	return out
}

func (s *Server) releaseEntities() []map[string]any {
	var out []map[string]any
	for _, r := range s.releases {
		out = append(out, map[string]any{"Key": r.Key, "Name": r.Name, "ProcessKey": r.ProcessKey, "ProcessVersion": "1.0.0", "IsLatestVersion": true})
	}
	return out
}

func (s *Server) robotEntities() []map[string]any {
	var out []map[string]any
	for _, ss := range s.sessions {
		out = append(out, map[string]any{"Id": ss.RobotID, "Name": ss.RobotName, "MachineName": ss.MachineName, "Type": "Unattended"})
	}
	return out
}

func (s *Server) sessionEntities() []map[string]any {
	var out []map[string]any
	for _, ss := range s.sessions {
		out = append(out, map[string]any{"Id": ss.ID, "State": ss.State, "MachineName": ss.MachineName, "IsUnresponsive": ss.IsUnresponsive,
			"Robot": map[string]any{"Id": ss.RobotID, "Name": ss.RobotName}})
	}
	return out
}

// list applies $filter, $orderby, $skip, $top and $count to entities.
func (s *Server) list(w http.ResponseWriter, r *http.Request, typ string, all []map[string]any) {
	q := r.URL.Query()
	props := map[string]bool{}
	for _, e := range all {
		for k := range e {
			props[k] = true
		}
	}
	// Known properties of the DTOs even when the set is empty.
	for _, p := range []string{"Id", "Name", "State", "CreationTime", "ProcessKey", "Key", "ReleaseName"} {
		props[p] = true
	}
	items := all
	if f := q.Get("$filter"); f != "" {
		pred, err := parseFilter(f, props)
		if err != nil {
			odataErr(w, http.StatusBadRequest, fmt.Sprintf("The query specified in the URI is not valid. %v on type '%s'.", err, typ), 0)
			return
		}
		items = nil
		for _, e := range all {
			if pred(e) {
				items = append(items, e)
			}
		}
	}
	if ob := q.Get("$orderby"); ob != "" {
		field, dir, _ := strings.Cut(ob, " ")
		sort.SliceStable(items, func(i, j int) bool {
			c, _ := compare(items[i][field], items[j][field])
			if dir == "desc" {
				return c > 0
			}
			return c < 0
		})
	}
	total := len(items)
	skip, _ := strconv.Atoi(q.Get("$skip"))
	top := 100
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			odataErr(w, http.StatusBadRequest, "The query specified in the URI is not valid. Invalid value for $top.", 0)
			return
		}
		top = min(n, 100) // Orchestrator caps $top at 100
	}
	if skip > len(items) {
		skip = len(items)
	}
	items = items[skip:]
	if len(items) > top {
		items = items[:top]
	}
	for _, e := range items {
		if t, ok := e["CreationTime"].(time.Time); ok {
			e["CreationTime"] = ts(t)
		}
	}
	body := map[string]any{"@odata.context": "https://orchestrator/odata/$metadata#" + strings.TrimPrefix(r.URL.Path, "/odata/"), "value": items}
	if q.Get("$count") == "true" {
		body["@odata.count"] = total
	}
	if items == nil {
		body["value"] = []any{}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) startJobs(w http.ResponseWriter, r *http.Request) {
	var in struct {
		StartInfo *struct {
			ReleaseKey     string
			Strategy       string
			JobsCount      int
			RuntimeType    string
			InputArguments string
			RobotIds       []int64
			Reference      string
		} `json:"startInfo"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.StartInfo == nil {
		odataErr(w, http.StatusBadRequest, "startInfo must not be null.", 0)
		return
	}
	si := in.StartInfo
	var rel *Release
	for _, x := range s.releases {
		if x.Key == si.ReleaseKey {
			rel = x
		}
	}
	if rel == nil {
		odataErr(w, http.StatusNotFound, "Release does not exist.", 1001)
		return
	}
	if si.InputArguments != "" && !json.Valid([]byte(si.InputArguments)) {
		odataErr(w, http.StatusBadRequest, "Invalid input arguments: not a JSON object.", 2803)
		return
	}
	n := 1
	robot := ""
	switch si.Strategy {
	case "ModernJobsCount", "JobsCount":
		if si.JobsCount > 0 {
			n = si.JobsCount
		}
		for _, ss := range s.sessions {
			if ss.State == "Available" && !ss.IsUnresponsive {
				robot = ss.RobotName
				break
			}
		}
	case "Specific":
		if len(si.RobotIds) == 0 {
			odataErr(w, http.StatusBadRequest, "At least one robot is required for the Specific strategy.", 0)
			return
		}
		for _, ss := range s.sessions {
			if ss.RobotID == si.RobotIds[0] {
				robot = ss.RobotName
			}
		}
	default:
		odataErr(w, http.StatusBadRequest, "Invalid start strategy '"+si.Strategy+"'.", 0)
		return
	}
	var out []map[string]any
	for i := 0; i < n; i++ {
		s.nextJob++
		j := &Job{ID: s.nextJob, Key: guid(), Release: rel, Input: si.InputArguments, Strategy: si.Strategy,
			RobotIDs: si.RobotIds, CreationTime: s.now(), RobotName: robot}
		s.jobs = append(s.jobs, j)
		out = append(out, s.jobEntity(j))
	}
	writeJSON(w, http.StatusCreated, map[string]any{"@odata.context": "https://orchestrator/odata/$metadata#Jobs", "value": out})
}

func (s *Server) stopJobs(w http.ResponseWriter, r *http.Request) {
	var in struct {
		JobIDs   []int64 `json:"jobIds"`
		Strategy any     `json:"strategy"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.JobIDs) == 0 {
		odataErr(w, http.StatusBadRequest, "jobIds must not be empty.", 0)
		return
	}
	strategy := fmt.Sprint(in.Strategy)
	switch strategy {
	case "SoftStop", "1":
		strategy = "SoftStop"
	case "Kill", "2":
		strategy = "Kill"
	default:
		odataErr(w, http.StatusBadRequest, "Invalid stop strategy.", 0)
		return
	}
	for _, id := range in.JobIDs {
		for _, j := range s.jobs {
			if j.ID == id {
				switch j.state() {
				case "Successful", "Faulted", "Stopped":
				default:
					if strategy == "SoftStop" && j.Release.IgnoresSoftStop {
						j.SoftStopped = true
						continue
					}
					j.Stopped, j.EndTime = strategy, s.now()
				}
			}
		}
	}
	w.WriteHeader(http.StatusOK)
}
