// Package aa is the Automation Anywhere (A360) Control Room vendor plugin.
// It speaks the Control Room API as Automation Anywhere documents it:
// POST /v1/authentication (user name with password or API key) for the
// token sent as X-Authorization, POST /v3/automations/deploy to run a bot
// (file id, run-as users, device pools, typed botInput), POST
// /v3/activity/list with filters and paging to follow executions, POST
// /v3/activity/manage to stop one, and POST /v2/devices/list for the bot
// runners' state. Rate-limited replies (429 with Retry-After) are waited
// out.
//
// Sources: docs.automationanywhere.com Control Room API (authentication,
// deploy, activity list, device list) and community clients.
package aa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/vendorhttp"
)

// Name is the plugin's name (`type = "aa"` in a vendor block).
const Name = "aa"

// Version is the plugin's release version, set by the build.
var Version = "dev"

const pageSize = 100

// Main serves the plugin.
func Main() { sdk.ServeVendor(New()) }

// Plugin implements sdk.Vendor.
type Plugin struct {
	mu    sync.Mutex
	cfg   config
	http  *vendorhttp.Client
	token string
}

type config struct {
	base         string
	username     string
	password     string
	apiKey       string
	runAsUserIDs []int64
	poolIDs      []int64
}

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{} }

// Info implements sdk.Vendor.
func (p *Plugin) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind: sdk.KindVendor, Name: Name, PluginVersion: Version, APIVersions: []int{sdk.VendorProtocolVersion},
		Capabilities: []string{"jobs.start", "jobs.stop", "jobs.list", "robots.list"},
		ConfigSchema: []sdk.ConfigAttribute{
			{Name: "url", Type: sdk.TypeString, Required: true, Description: "Control Room URL, e.g. https://controlroom.example.com"},
			{Name: "username", Type: sdk.TypeString, Required: true},
			// api_key first: the first Sensitive attribute takes a
			// credential's secret whose field names neither.
			{Name: "api_key", Type: sdk.TypeString, Sensitive: true, Description: "API key; or password"},
			{Name: "password", Type: sdk.TypeString, Sensitive: true, Description: "Password; or api_key"},
			{Name: "run_as_user_ids", Type: sdk.TypeList, Description: "Comma-separated ids of the users bots run as (runAsUserIds)"},
			{Name: "pool_ids", Type: sdk.TypeList, Description: "Comma-separated device pool ids (poolIds)"},
			{Name: "max_retries", Type: sdk.TypeNumber, Default: "5"},
		},
	}, nil
}

func ids(v string) ([]int64, error) {
	var out []int64
	for _, s := range strings.FieldsFunc(strings.Trim(v, "[]"), func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.ParseInt(strings.Trim(s, `"`), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a numeric id", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// Configure implements sdk.Vendor.
func (p *Plugin) Configure(_ context.Context, m map[string]string) ([]sdk.ConfigDiagnostic, error) {
	var diags []sdk.ConfigDiagnostic
	bad := func(a, msg string) { diags = append(diags, sdk.ConfigDiagnostic{Attribute: a, Message: msg}) }
	var c config
	retries := 5
	for k, v := range m {
		var err error
		switch k {
		case "url":
			c.base = strings.TrimRight(v, "/")
		case "username":
			c.username = v
		case "password":
			c.password = v
		case "api_key":
			c.apiKey = v
		case "run_as_user_ids":
			c.runAsUserIDs, err = ids(v)
		case "pool_ids":
			c.poolIDs, err = ids(v)
		case "max_retries":
			retries, err = strconv.Atoi(v)
		case "tenant", "folder":
			// Not used by Control Room.
		default:
			bad(k, "unknown attribute")
		}
		if err != nil {
			bad(k, err.Error())
		}
	}
	u, err := url.Parse(c.base)
	if c.base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "must be an absolute http(s) URL of the Control Room")
	}
	if c.username == "" {
		bad("username", "required")
	}
	if c.password == "" && c.apiKey == "" {
		bad("password", "password or api_key is required (a vault: reference in HCL)")
	}
	if len(diags) > 0 {
		return diags, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.token = c, ""
	p.http = &vendorhttp.Client{HTTP: &http.Client{Timeout: 60 * time.Second}, Vendor: "AA Control Room", MaxRetries: retries, MaxWait: 2 * time.Minute}
	return nil, nil
}

// ErrAuth is wrapped when the Control Room refuses the credentials.
var ErrAuth = errors.New("authentication failed")

// crError reads the Control Room's error body {"code","details","message"}.
func crError(body []byte) string {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details string `json:"details"`
	}
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return ""
	}
	s := e.Message
	if e.Details != "" {
		s += ": " + e.Details
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

func (p *Plugin) client() (*vendorhttp.Client, config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.http == nil {
		return nil, config{}, fmt.Errorf("the AA plugin is not configured: %w", sdk.ErrInvalidRequest)
	}
	return p.http, p.cfg, nil
}

func (p *Plugin) authenticate(ctx context.Context, refresh bool) (string, error) {
	hc, c, err := p.client()
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	if p.token != "" && !refresh {
		t := p.token
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	body := map[string]any{"username": c.username}
	if c.apiKey != "" {
		body["apiKey"] = c.apiKey
	} else {
		body["password"], body["multipleLogin"] = c.password, false
	}
	var out struct {
		Token string `json:"token"`
	}
	_, err = hc.Do(ctx, vendorhttp.Request{Method: http.MethodPost, URL: c.base + "/v1/authentication", Path: "/v1/authentication", Body: body, Message: crError}, &out)
	if err != nil {
		var se *vendorhttp.StatusError
		if errors.As(err, &se) && (se.Status == 400 || se.Status == 401 || se.Status == 403) {
			return "", fmt.Errorf("%w: user %q: %v", ErrAuth, c.username, err)
		}
		return "", err
	}
	if out.Token == "" {
		return "", fmt.Errorf("AA Control Room POST /v1/authentication: %w: no token in the reply", vendorhttp.ErrMalformed)
	}
	p.mu.Lock()
	p.token = out.Token
	p.mu.Unlock()
	return out.Token, nil
}

// call sends an authenticated request; a 401 re-authenticates once
// (Control Room tokens expire after a period of inactivity).
func (p *Plugin) call(ctx context.Context, path string, body, out any) error {
	hc, c, err := p.client()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		tok, err := p.authenticate(ctx, attempt > 0)
		if err != nil {
			return err
		}
		_, err = hc.Do(ctx, vendorhttp.Request{Method: http.MethodPost, URL: c.base + path, Path: path,
			Header: http.Header{"X-Authorization": {tok}}, Body: body, Message: crError}, out)
		var se *vendorhttp.StatusError
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
			if attempt == 0 {
				continue
			}
			return fmt.Errorf("%w: %v", ErrAuth, err)
		}
		if errors.As(err, &se) && (se.Status == http.StatusBadRequest || se.Status == http.StatusNotFound) {
			return fmt.Errorf("%w: %v", sdk.ErrInvalidRequest, err)
		}
		return err
	}
}

// botInput types JSON values the way the deploy API wants them.
func botInput(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 {
		return map[string]any{}, nil
	}
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("bot input must be a JSON object: %w", sdk.ErrInvalidRequest)
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		switch x := v.(type) {
		case string:
			out[k] = map[string]any{"type": "STRING", "string": x}
		case float64:
			out[k] = map[string]any{"type": "NUMBER", "number": strconv.FormatFloat(x, 'f', -1, 64)}
		case bool:
			out[k] = map[string]any{"type": "BOOLEAN", "boolean": x}
		default:
			b, _ := json.Marshal(x)
			out[k] = map[string]any{"type": "STRING", "string": string(b)}
		}
	}
	return out, nil
}

// StartJob implements sdk.Vendor: POST /v3/automations/deploy. The job's
// id is the deployment id.
func (p *Plugin) StartJob(ctx context.Context, req sdk.StartJobRequest) (sdk.Job, error) {
	_, c, err := p.client()
	if err != nil {
		return sdk.Job{}, err
	}
	fileID, err := strconv.ParseInt(req.Package, 10, 64)
	if err != nil {
		return sdk.Job{}, fmt.Errorf("AA package %q must be the bot's numeric file id: %w", req.Package, sdk.ErrInvalidRequest)
	}
	if len(c.runAsUserIDs) == 0 {
		return sdk.Job{}, fmt.Errorf("AA deploy needs run_as_user_ids in the vendor block: %w", sdk.ErrInvalidRequest)
	}
	in, err := botInput(req.Input)
	if err != nil {
		return sdk.Job{}, err
	}
	body := map[string]any{"fileId": fileID, "runAsUserIds": c.runAsUserIDs, "poolIds": c.poolIDs,
		"overrideDefaultDevice": false, "botInput": in}
	if c.poolIDs == nil {
		body["poolIds"] = []int64{}
	}
	var out struct {
		DeploymentID string `json:"deploymentId"`
	}
	if err := p.call(ctx, "/v3/automations/deploy", body, &out); err != nil {
		return sdk.Job{}, err
	}
	if out.DeploymentID == "" {
		return sdk.Job{}, fmt.Errorf("AA Control Room deploy: %w: no deploymentId in the reply", vendorhttp.ErrMalformed)
	}
	return sdk.Job{ID: out.DeploymentID, Package: req.Package, State: sdk.JobPending, VendorState: "DEPLOYED", CreatedAt: time.Now()}, nil
}

// States maps Control Room activity statuses to rpacloud's.
var States = map[string]sdk.JobState{
	"DEPLOYED": sdk.JobPending, "QUEUED": sdk.JobPending, "PENDING_EXECUTION": sdk.JobPending,
	"BOTSTORE_PACKAGE_DOWNLOADING": sdk.JobPending, "BOTSTORE_PACKAGE_EXTRACTING": sdk.JobPending, "BOTSTORE_PACKAGE_COPYING": sdk.JobPending,
	"RUNNING": sdk.JobRunning, "UPDATE": sdk.JobRunning, "RUN_PAUSED": sdk.JobSuspended,
	"COMPLETED": sdk.JobSucceeded, "RUN_FAILED": sdk.JobFaulted, "RUN_TIMED_OUT": sdk.JobFaulted, "DEPLOY_FAILED": sdk.JobFaulted,
	"RUN_ABORTED": sdk.JobStopped, "UNKNOWN": sdk.JobUnknown,
}

type activity struct {
	ID              string          `json:"id"`
	DeploymentID    string          `json:"deploymentId"`
	AutomationName  string          `json:"automationName"`
	FileName        string          `json:"fileName"`
	Status          string          `json:"status"`
	StartDateTime   *string         `json:"startDateTime"`
	EndDateTime     *string         `json:"endDateTime"`
	DeviceName      string          `json:"deviceName"`
	UserName        string          `json:"userName"`
	Message         string          `json:"message"`
	BotOutVariables json.RawMessage `json:"botOutVariables"`
}

func parseTime(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, *s)
	return t
}

func (a activity) toSDK() sdk.Job {
	st, ok := States[a.Status]
	if !ok {
		st = sdk.JobUnknown
	}
	j := sdk.Job{ID: a.DeploymentID, Package: a.AutomationName, Robot: a.UserName, Machine: a.DeviceName, State: st,
		VendorState: a.Status, StartedAt: parseTime(a.StartDateTime), EndedAt: parseTime(a.EndDateTime), Info: a.Message}
	if st.Terminal() && len(a.BotOutVariables) > 0 && string(a.BotOutVariables) != "null" {
		j.Output = a.BotOutVariables
	}
	return j
}

type activityPage struct {
	Page struct {
		Offset      int `json:"offset"`
		Total       int `json:"total"`
		TotalFilter int `json:"totalFilter"`
	} `json:"page"`
	List []activity `json:"list"`
}

func (p *Plugin) activities(ctx context.Context, filter map[string]any, limit int) ([]activity, error) {
	var out []activity
	for offset := 0; ; offset += pageSize {
		body := map[string]any{
			"sort":   []map[string]string{{"field": "startDateTime", "direction": "desc"}},
			"fields": []string{},
			"page":   map[string]int{"offset": offset, "length": pageSize},
		}
		if filter != nil {
			body["filter"] = filter
		}
		var page activityPage
		if err := p.call(ctx, "/v3/activity/list", body, &page); err != nil {
			return nil, err
		}
		if page.List == nil {
			return nil, fmt.Errorf("AA Control Room POST /v3/activity/list: %w: no list in the reply", vendorhttp.ErrMalformed)
		}
		out = append(out, page.List...)
		if (limit > 0 && len(out) >= limit) || len(page.List) < pageSize || offset+len(page.List) >= page.Page.TotalFilter {
			if limit > 0 && len(out) > limit {
				out = out[:limit]
			}
			return out, nil
		}
	}
}

func (p *Plugin) activityOf(ctx context.Context, deploymentID string) (*activity, error) {
	list, err := p.activities(ctx, map[string]any{"operator": "eq", "field": "deploymentId", "value": deploymentID}, 1)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return &list[0], nil
}

// GetJob implements sdk.Vendor. A deployment without an activity yet is
// pending: the Control Room lists it once a device picks it up.
func (p *Plugin) GetJob(ctx context.Context, id string) (sdk.Job, error) {
	a, err := p.activityOf(ctx, id)
	if err != nil {
		return sdk.Job{}, err
	}
	if a == nil {
		return sdk.Job{ID: id, State: sdk.JobPending, VendorState: "DEPLOYED"}, nil
	}
	return a.toSDK(), nil
}

// StopJob implements sdk.Vendor: POST /v3/activity/manage.
func (p *Plugin) StopJob(ctx context.Context, id string, _ bool) error {
	a, err := p.activityOf(ctx, id)
	if err != nil {
		return err
	}
	if a == nil {
		return fmt.Errorf("AA deployment %s has no execution to stop yet: %w", id, sdk.ErrNothingToDo)
	}
	return p.call(ctx, "/v3/activity/manage", map[string]any{"executionId": a.ID, "action": "STOP"}, nil)
}

// ListJobs implements sdk.Vendor: POST /v3/activity/list with a filter on
// status and start time, paged.
func (p *Plugin) ListJobs(ctx context.Context, f sdk.JobFilter) ([]sdk.Job, error) {
	var operands []map[string]any
	if len(f.States) > 0 {
		var ors []map[string]any
		var names []string
		for _, want := range f.States {
			for name, st := range States {
				if st == want {
					names = append(names, name)
				}
			}
		}
		sort.Strings(names)
		for _, n := range names {
			ors = append(ors, map[string]any{"operator": "eq", "field": "status", "value": n})
		}
		if len(ors) == 0 {
			return nil, nil
		}
		operands = append(operands, map[string]any{"operator": "or", "operands": ors})
	}
	if !f.Since.IsZero() {
		operands = append(operands, map[string]any{"operator": "gt", "field": "startDateTime", "value": f.Since.UTC().Format(time.RFC3339)})
	}
	var filter map[string]any
	switch len(operands) {
	case 0:
	case 1:
		filter = operands[0]
	default:
		filter = map[string]any{"operator": "and", "operands": operands}
	}
	list, err := p.activities(ctx, filter, f.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]sdk.Job, 0, len(list))
	for _, a := range list {
		out = append(out, a.toSDK())
	}
	return out, nil
}

// DeviceStates maps device statuses to rpacloud's robot states.
var DeviceStates = map[string]sdk.RobotState{
	"CONNECTED": sdk.RobotAvailable, "DISCONNECTED": sdk.RobotDisconnected, "OFFLINE": sdk.RobotDisconnected,
	"UNRESPONSIVE": sdk.RobotUnresponsive, "BUSY": sdk.RobotBusy,
}

// ListRobots implements sdk.Vendor: POST /v2/devices/list, paged.
func (p *Plugin) ListRobots(ctx context.Context) ([]sdk.VendorRobot, error) {
	var out []sdk.VendorRobot
	for offset := 0; ; offset += pageSize {
		var page struct {
			Page struct {
				TotalFilter int `json:"totalFilter"`
			} `json:"page"`
			List []struct {
				ID           json.Number `json:"id"`
				HostName     string      `json:"hostName"`
				Status       string      `json:"status"`
				Type         string      `json:"type"`
				DefaultUsers []struct {
					Username string `json:"username"`
				} `json:"defaultUsers"`
			} `json:"list"`
		}
		body := map[string]any{"sort": []map[string]string{{"field": "id", "direction": "asc"}}, "page": map[string]int{"offset": offset, "length": pageSize}}
		if err := p.call(ctx, "/v2/devices/list", body, &page); err != nil {
			return nil, err
		}
		for _, d := range page.List {
			r := sdk.VendorRobot{ID: d.ID.String(), Name: d.HostName, Machine: d.HostName, VendorState: d.Status, State: DeviceStates[d.Status]}
			if len(d.DefaultUsers) > 0 {
				r.Name = d.DefaultUsers[0].Username
			}
			if r.State == "" {
				r.State = sdk.RobotUnknown
			}
			out = append(out, r)
		}
		if len(page.List) < pageSize || offset+len(page.List) >= page.Page.TotalFilter {
			return out, nil
		}
	}
}
