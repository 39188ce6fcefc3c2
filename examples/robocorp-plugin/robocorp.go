// Package robocorp is an example third-party vendor plugin for rpacloud:
// Robocorp Control Room, through its workspace-scoped Control Room API v1
// (https://robocorp.com/api, https://robocorp.com/docs/control-room/apis-and-webhooks).
// It is a module of its own that imports of rpacloud only plugins/sdk, as
// any vendor's plugin would, and is built into the daemon's plugin
// directory as rpacloud-vendor-robocorp.
//
// What it speaks, as Control Room documents it: an API key sent as
// "Authorization: RC-WSKEY <key>"; a job is a process run, started with
// POST /workspaces/{ws}/processes/{process}/process-runs and the task's
// input as the one work-item payload ({"type": "with_payloads"}), followed
// with GET /workspaces/{ws}/process-runs/{id} and stopped with POST
// .../process-runs/{id}/stop; lists (process runs, workers) come in pages
// of {"data", "has_more", "next"} and are read to the end; errors are JSON
// {"error", "message"}; rate-limited replies (429 with Retry-After) are
// waited out.
package robocorp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/vendorhttp"
)

// Name is the plugin's name: `type = "robocorp"` in a vendor block.
const Name = "robocorp"

// Version is the plugin's release version, set by the build.
var Version = "dev"

// DefaultPageSize is the limit asked for per page.
const DefaultPageSize = 100

// maxPages bounds how many pages one list reads: a Control Room that
// always says has_more must not keep the plugin reading forever.
const maxPages = 1000

// Main serves the plugin.
func Main() { sdk.ServeVendor(New()) }

// Plugin implements sdk.Vendor.
type Plugin struct {
	mu   sync.Mutex
	cfg  config
	http *vendorhttp.Client
}

type config struct {
	base      *url.URL // API base, e.g. https://cloud.robocorp.com/api/v1
	workspace string
	apiKey    string
	pageSize  int
}

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{} }

// Info implements sdk.Vendor. The schema is what rpacloud checks the
// vendor block against (`rpacloud validate` reads it by starting this
// executable); api_key is Sensitive, so it must be a vault: reference and
// is routed from the block's credentials.
func (p *Plugin) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind: sdk.KindVendor, Name: Name, PluginVersion: Version, APIVersions: []int{sdk.VendorProtocolVersion},
		Capabilities: []string{"jobs.start", "jobs.stop", "jobs.list", "robots.list"},
		ConfigSchema: []sdk.ConfigAttribute{
			{Name: "url", Type: sdk.TypeString, Required: true, Description: "Control Room API base URL: https://cloud.robocorp.com/api/v1, or https://<sso-subdomain>.robocorp.com/api/v1"},
			{Name: "workspace_id", Type: sdk.TypeString, Required: true, Description: "Workspace the API key belongs to"},
			{Name: "api_key", Type: sdk.TypeString, Required: true, Sensitive: true, Description: "Workspace API key with the process-run and worker permissions (sent as RC-WSKEY)"},
			{Name: "page_size", Type: sdk.TypeNumber, Default: strconv.Itoa(DefaultPageSize), Description: "Items asked for per page of a list"},
			{Name: "max_retries", Type: sdk.TypeNumber, Default: "5", Description: "Rate-limited replies (429) waited out per call"},
		},
	}, nil
}

// Configure implements sdk.Vendor.
func (p *Plugin) Configure(_ context.Context, m map[string]string) ([]sdk.ConfigDiagnostic, error) {
	var diags []sdk.ConfigDiagnostic
	bad := func(a, msg string) { diags = append(diags, sdk.ConfigDiagnostic{Attribute: a, Message: msg}) }
	c := config{pageSize: DefaultPageSize}
	retries := 5
	for k, v := range m {
		switch k {
		case "url":
			u, err := url.Parse(strings.TrimRight(v, "/"))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
				bad(k, "must be an absolute http(s) URL of the Control Room API, without credentials")
				continue
			}
			c.base = u
		case "workspace_id":
			c.workspace = v
		case "api_key":
			c.apiKey = v
		case "page_size":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				bad(k, "must be a whole number from 1 to 1000")
			}
			c.pageSize = n
		case "max_retries":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				bad(k, "must be a whole number ≥ 0")
			}
			retries = n
		default:
			bad(k, "unknown attribute")
		}
	}
	if c.base == nil && m["url"] == "" {
		bad("url", "required")
	}
	if c.workspace == "" || strings.ContainsAny(c.workspace, "/?#") {
		bad("workspace_id", "required: the workspace's ID")
	}
	if c.apiKey == "" {
		bad("api_key", "required (a vault: reference in HCL, or the credentials of the vendor block)")
	}
	if len(diags) > 0 {
		return diags, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = c
	p.http = &vendorhttp.Client{HTTP: &http.Client{Timeout: 60 * time.Second}, Vendor: "Robocorp Control Room", MaxRetries: retries, MaxWait: 2 * time.Minute}
	return nil, nil
}

// ErrAuth is wrapped when Control Room refuses the API key.
var ErrAuth = errors.New("robocorp: Control Room refused the API key")

// apiError is Control Room's error body.
func apiError(body []byte) string {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	switch {
	case e.Message != "" && e.Error != "":
		return e.Message + " (" + e.Error + ")"
	case e.Message != "":
		return e.Message
	}
	return e.Error
}

func (p *Plugin) client() (*vendorhttp.Client, config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.http == nil {
		return nil, config{}, errors.New("robocorp plugin: not configured")
	}
	return p.http, p.cfg, nil
}

// call sends one request to path under the workspace (or to an absolute
// URL Control Room gave as a page's next).
func (p *Plugin) call(ctx context.Context, method, rawURL, path string, body, out any) error {
	hc, c, err := p.client()
	if err != nil {
		return err
	}
	h := http.Header{"Authorization": {"RC-WSKEY " + c.apiKey}, "Accept": {"application/json"}}
	_, err = hc.Do(ctx, vendorhttp.Request{Method: method, URL: rawURL, Path: path, Header: h, Body: body, Message: apiError}, out)
	var se *vendorhttp.StatusError
	switch {
	case errors.As(err, &se) && (se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden):
		return fmt.Errorf("%w: %v", ErrAuth, err)
	case errors.As(err, &se) && (se.Status == http.StatusBadRequest || se.Status == http.StatusNotFound || se.Status == http.StatusConflict):
		return fmt.Errorf("%w: %v", sdk.ErrInvalidRequest, err)
	}
	return err
}

func (c config) url(path string, q url.Values) string {
	u := *c.base
	u.Path = strings.TrimRight(u.Path, "/") + "/workspaces/" + url.PathEscape(c.workspace) + path
	u.RawQuery = q.Encode()
	return u.String()
}

// page is one page of a Control Room list.
type page[T any] struct {
	Data    []T     `json:"data"`
	HasMore bool    `json:"has_more"`
	Next    *string `json:"next"`
}

// list reads every page of a list. A next URL must stay on the API's own
// scheme and host: the API key is sent with it.
func list[T any](ctx context.Context, p *Plugin, path string, q url.Values, keep func(T) bool) ([]T, error) {
	_, c, err := p.client()
	if err != nil {
		return nil, err
	}
	q.Set("limit", strconv.Itoa(c.pageSize))
	next := c.url(path, q)
	var out []T
	for range maxPages {
		var pg page[T]
		if err := p.call(ctx, http.MethodGet, next, "/workspaces/{ws}"+path, nil, &pg); err != nil {
			return nil, err
		}
		for _, item := range pg.Data {
			if keep == nil || keep(item) {
				out = append(out, item)
			}
		}
		if !pg.HasMore || pg.Next == nil || *pg.Next == "" {
			return out, nil
		}
		u, err := c.base.Parse(*pg.Next)
		if err != nil || u.Scheme != c.base.Scheme || u.Host != c.base.Host {
			return nil, fmt.Errorf("robocorp: Control Room GET %s: %w: next page %.200q is not on %s", path, vendorhttp.ErrMalformed, *pg.Next, c.base.Host)
		}
		next = u.String()
	}
	return nil, fmt.Errorf("robocorp: Control Room GET %s: %w: still has_more after %d pages", path, vendorhttp.ErrMalformed, maxPages)
}

// processRun is Control Room's ProcessRunResource (the fields read here).
type processRun struct {
	ID        string  `json:"id"`
	State     string  `json:"state"`
	CreatedAt *string `json:"created_at"`
	StartedAt *string `json:"started_at"`
	EndedAt   *string `json:"ended_at"`
	Process   struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"process"`
	StartedBy struct {
		Type string `json:"type"`
	} `json:"started_by"`
}

// jobState maps a process run's state. "unresolved" is Control Room's
// end state of a run with failed work items.
func jobState(s string) sdk.JobState {
	switch s {
	case "new", "pending":
		return sdk.JobPending
	case "in_progress":
		return sdk.JobRunning
	case "stopping":
		return sdk.JobStopping
	case "completed":
		return sdk.JobSucceeded
	case "unresolved", "failed":
		return sdk.JobFaulted
	case "stopped":
		return sdk.JobStopped
	}
	return sdk.JobUnknown
}

func parseTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func (r processRun) toSDK() sdk.Job {
	j := sdk.Job{ID: r.ID, Package: r.Process.ID, State: jobState(r.State), VendorState: r.State,
		CreatedAt: parseTime(r.CreatedAt), StartedAt: parseTime(r.StartedAt), EndedAt: parseTime(r.EndedAt)}
	if j.State == sdk.JobFaulted {
		j.Info = "process run " + r.ID + " of " + r.Process.Name + " is unresolved: work items failed"
	}
	return j
}

// StartJob implements sdk.Vendor: the package is the Control Room process
// ID, the task's input the run's one input work item.
func (p *Plugin) StartJob(ctx context.Context, req sdk.StartJobRequest) (sdk.Job, error) {
	_, c, err := p.client()
	if err != nil {
		return sdk.Job{}, err
	}
	if req.Package == "" || strings.ContainsAny(req.Package, "/?#") {
		return sdk.Job{}, fmt.Errorf("package %q is not a Control Room process ID: %w", req.Package, sdk.ErrInvalidRequest)
	}
	payload := json.RawMessage("{}")
	if len(req.Input) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(req.Input, &obj); err != nil {
			return sdk.Job{}, fmt.Errorf("input must be a JSON object (the run's work item): %w", sdk.ErrInvalidRequest)
		}
		payload = req.Input
	}
	body := map[string]any{"type": "with_payloads", "payloads": []json.RawMessage{payload}}
	var out struct {
		ID string `json:"id"`
	}
	path := "/processes/" + url.PathEscape(req.Package) + "/process-runs"
	if err := p.call(ctx, http.MethodPost, c.url(path, nil), "/workspaces/{ws}/processes/{process}/process-runs", body, &out); err != nil {
		return sdk.Job{}, err
	}
	if out.ID == "" {
		return sdk.Job{}, fmt.Errorf("robocorp: Control Room start process run: %w: no run id in the reply", vendorhttp.ErrMalformed)
	}
	return p.GetJob(ctx, out.ID)
}

// GetJob implements sdk.Vendor.
func (p *Plugin) GetJob(ctx context.Context, id string) (sdk.Job, error) {
	_, c, err := p.client()
	if err != nil {
		return sdk.Job{}, err
	}
	var r processRun
	if err := p.call(ctx, http.MethodGet, c.url("/process-runs/"+url.PathEscape(id), nil), "/workspaces/{ws}/process-runs/{id}", nil, &r); err != nil {
		return sdk.Job{}, err
	}
	if r.ID == "" {
		return sdk.Job{}, fmt.Errorf("robocorp: Control Room get process run %s: %w: no id in the reply", id, vendorhttp.ErrMalformed)
	}
	return r.toSDK(), nil
}

// StopJob implements sdk.Vendor. Kill terminates the run's ongoing step
// runs; otherwise they finish the work item at hand.
func (p *Plugin) StopJob(ctx context.Context, id string, kill bool) error {
	_, c, err := p.client()
	if err != nil {
		return err
	}
	body := map[string]any{"set_remaining_work_items_as_done": false, "terminate_ongoing_activity_runs": kill}
	return p.call(ctx, http.MethodPost, c.url("/process-runs/"+url.PathEscape(id)+"/stop", nil), "/workspaces/{ws}/process-runs/{id}/stop", body, nil)
}

// ListJobs implements sdk.Vendor, newest first.
func (p *Plugin) ListJobs(ctx context.Context, f sdk.JobFilter) ([]sdk.Job, error) {
	want := map[sdk.JobState]bool{}
	for _, s := range f.States {
		want[s] = true
	}
	runs, err := list(ctx, p, "/process-runs", url.Values{}, func(r processRun) bool {
		return f.Since.IsZero() || !parseTime(r.CreatedAt).Before(f.Since)
	})
	if err != nil {
		return nil, err
	}
	out := make([]sdk.Job, 0, len(runs))
	for _, r := range runs {
		j := r.toSDK()
		if len(want) > 0 && !want[j.State] {
			continue
		}
		out = append(out, j)
	}
	sortNewestFirst(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func sortNewestFirst(jobs []sdk.Job) {
	for i := 1; i < len(jobs); i++ {
		for k := i; k > 0 && jobs[k].CreatedAt.After(jobs[k-1].CreatedAt); k-- {
			jobs[k], jobs[k-1] = jobs[k-1], jobs[k]
		}
	}
}

// worker is Control Room's WorkerResource (the fields read here).
type worker struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State string `json:"state"`
}

func robotState(s string) sdk.RobotState {
	switch s {
	case "online", "available":
		return sdk.RobotAvailable
	case "busy", "running":
		return sdk.RobotBusy
	case "offline":
		return sdk.RobotDisconnected
	case "unresponsive":
		return sdk.RobotUnresponsive
	}
	return sdk.RobotUnknown
}

// ListRobots implements sdk.Vendor: Control Room's workers.
func (p *Plugin) ListRobots(ctx context.Context) ([]sdk.VendorRobot, error) {
	ws, err := list[worker](ctx, p, "/workers", url.Values{}, nil)
	if err != nil {
		return nil, err
	}
	out := make([]sdk.VendorRobot, 0, len(ws))
	for _, w := range ws {
		out = append(out, sdk.VendorRobot{ID: w.ID, Name: w.Name, Machine: w.Name, State: robotState(w.State), VendorState: w.State})
	}
	return out, nil
}
