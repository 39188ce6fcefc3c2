// Package uipath is the UiPath Orchestrator vendor plugin. It speaks
// Orchestrator's REST/OData API as UiPath documents it: an OAuth 2.0
// client-credentials token from the identity server, the folder header
// (X-UIPATH-OrganizationUnitId or X-UIPATH-FolderPath) on folder-scoped
// calls, StartJobs for a release, Jobs(id) to follow a job through
// Pending/Running/.../Successful|Faulted|Stopped, StopJobs, and Sessions for
// robot state, reading lists page by page with $top/$skip/$filter.
// Rate-limited replies (HTTP 429 with Retry-After) are waited out.
//
// Sources: docs.uipath.com Orchestrator API guide (jobs requests,
// enumerated types JobState, rate limits, accessing resources using
// external applications) and UiPath's own clients (uipath-python
// client-credentials flow; uipath-typescript JobState and endpoints).
package uipath

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

// Name is the plugin's name (`type = "uipath"` in a vendor block).
const Name = "uipath"

// Version is the plugin's release version, set by the build.
var Version = "dev"

// DefaultScope is the OAuth scope requested: jobs, robots, execution.
const DefaultScope = "OR.Jobs OR.Robots.Read OR.Execution OR.Folders.Read"

// pageSize is Orchestrator's $top cap.
const pageSize = 100

// Main serves the plugin.
func Main() { sdk.ServeVendor(New()) }

// Plugin implements sdk.Vendor.
type Plugin struct {
	mu       sync.Mutex
	cfg      config
	http     *vendorhttp.Client
	token    string
	tokenExp time.Time
	releases map[string]string // name → key
}

type config struct {
	base         string // orchestrator base URL, no trailing slash
	tokenURL     string
	clientID     string
	clientSecret string
	scope        string
	folderID     string
	folderPath   string
	tenant       string
}

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{releases: map[string]string{}} }

// Info implements sdk.Vendor.
func (p *Plugin) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind: sdk.KindVendor, Name: Name, PluginVersion: Version, APIVersions: []int{sdk.VendorProtocolVersion},
		Capabilities: []string{"jobs.start", "jobs.stop", "jobs.list", "robots.list"},
		ConfigSchema: []sdk.ConfigAttribute{
			{Name: "url", Type: sdk.TypeString, Required: true, Description: "Orchestrator base URL, e.g. https://cloud.uipath.com/ORG/TENANT/orchestrator_ or https://orchestrator.example.com"},
			{Name: "token_url", Type: sdk.TypeString, Description: "OAuth token endpoint; default https://cloud.uipath.com/identity_/connect/token for cloud URLs, URL/identity/connect/token otherwise"},
			{Name: "client_id", Type: sdk.TypeString, Required: true, Description: "External application (confidential) ID"},
			{Name: "client_secret", Type: sdk.TypeString, Required: true, Sensitive: true, Description: "External application secret"},
			{Name: "scope", Type: sdk.TypeString, Default: DefaultScope},
			{Name: "folder_id", Type: sdk.TypeString, Description: "Folder (organization unit) ID sent as X-UIPATH-OrganizationUnitId"},
			{Name: "folder", Type: sdk.TypeString, Description: "Folder path sent as X-UIPATH-FolderPath, when folder_id is not set"},
			{Name: "tenant", Type: sdk.TypeString, Description: "Tenant name sent as X-UIPATH-TenantName (multi-tenant on-premises)"},
			{Name: "max_retries", Type: sdk.TypeNumber, Default: "5", Description: "Rate-limited replies (429) waited out per call"},
		},
	}, nil
}

// Configure implements sdk.Vendor.
func (p *Plugin) Configure(_ context.Context, m map[string]string) ([]sdk.ConfigDiagnostic, error) {
	var diags []sdk.ConfigDiagnostic
	bad := func(a, msg string) { diags = append(diags, sdk.ConfigDiagnostic{Attribute: a, Message: msg}) }
	c := config{scope: DefaultScope}
	retries := 5
	for k, v := range m {
		switch k {
		case "url":
			c.base = strings.TrimRight(v, "/")
		case "token_url":
			c.tokenURL = v
		case "client_id":
			c.clientID = v
		case "client_secret":
			c.clientSecret = v
		case "scope":
			c.scope = v
		case "folder_id":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				bad(k, "must be the folder's numeric ID")
			}
			c.folderID = v
		case "folder":
			c.folderPath = v
		case "tenant":
			c.tenant = v
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
	u, err := url.Parse(c.base)
	if c.base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url", "must be an absolute http(s) URL of the Orchestrator")
	}
	if c.clientID == "" {
		bad("client_id", "required")
	}
	if c.clientSecret == "" {
		bad("client_secret", "required (a vault: reference in HCL)")
	}
	if len(diags) > 0 {
		return diags, nil
	}
	if c.tokenURL == "" {
		if u.Host == "cloud.uipath.com" {
			c.tokenURL = "https://cloud.uipath.com/identity_/connect/token"
		} else {
			c.tokenURL = u.Scheme + "://" + u.Host + "/identity/connect/token"
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = c
	p.token, p.tokenExp = "", time.Time{}
	p.releases = map[string]string{}
	p.http = &vendorhttp.Client{HTTP: &http.Client{Timeout: 60 * time.Second}, Vendor: "UiPath Orchestrator", MaxRetries: retries, MaxWait: 2 * time.Minute}
	return nil, nil
}

// ErrAuth is wrapped when Orchestrator's identity server refuses the
// client credentials or a fresh token.
var ErrAuth = errors.New("authentication failed")

// odataError reads Orchestrator's error body {"message","errorCode"} or
// the identity server's {"error","error_description"}.
func odataError(body []byte) string {
	var e struct {
		Message          string `json:"message"`
		ErrorCode        int    `json:"errorCode"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	switch {
	case e.Message != "" && e.ErrorCode != 0:
		return fmt.Sprintf("%s (errorCode %d)", e.Message, e.ErrorCode)
	case e.Message != "":
		return e.Message
	case e.Error != "":
		return strings.TrimSpace(e.Error + " " + e.ErrorDescription)
	}
	return ""
}

func (p *Plugin) client() (*vendorhttp.Client, config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.http == nil {
		return nil, config{}, fmt.Errorf("the UiPath plugin is not configured: %w", sdk.ErrInvalidRequest)
	}
	return p.http, p.cfg, nil
}

// accessToken returns a valid token, fetching one with the client
// credentials when there is none or it is about to expire.
func (p *Plugin) accessToken(ctx context.Context, refresh bool) (string, error) {
	hc, c, err := p.client()
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	if !refresh && p.token != "" && time.Until(p.tokenExp) > time.Minute {
		t := p.token
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.clientID}, "client_secret": {c.clientSecret}, "scope": {c.scope}}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	_, err = hc.Do(ctx, vendorhttp.Request{Method: http.MethodPost, URL: c.tokenURL, Path: pathOf(c.tokenURL), Form: form.Encode(), Message: odataError}, &out)
	if err != nil {
		var se *vendorhttp.StatusError
		if errors.As(err, &se) && (se.Status == 400 || se.Status == 401) {
			return "", fmt.Errorf("%w: client %q: %v", ErrAuth, c.clientID, err)
		}
		return "", err
	}
	if out.AccessToken == "" || !strings.EqualFold(out.TokenType, "Bearer") {
		return "", fmt.Errorf("UiPath identity server: %w: token reply without a Bearer access_token", vendorhttp.ErrMalformed)
	}
	if out.ExpiresIn <= 0 {
		out.ExpiresIn = 3600
	}
	p.mu.Lock()
	p.token, p.tokenExp = out.AccessToken, time.Now().Add(time.Duration(out.ExpiresIn)*time.Second)
	p.mu.Unlock()
	return out.AccessToken, nil
}

func pathOf(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Path
	}
	return raw
}

// call sends an authenticated request; a 401 gets one fresh token and one
// retry (tokens may be revoked before they expire).
func (p *Plugin) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	hc, c, err := p.client()
	if err != nil {
		return err
	}
	u := c.base + path
	if len(query) > 0 {
		// OData wants %20 for spaces, not '+'.
		u += "?" + strings.ReplaceAll(query.Encode(), "+", "%20")
	}
	for attempt := 0; ; attempt++ {
		tok, err := p.accessToken(ctx, attempt > 0)
		if err != nil {
			return err
		}
		h := http.Header{"Authorization": {"Bearer " + tok}}
		switch {
		case c.folderID != "":
			h.Set("X-UIPATH-OrganizationUnitId", c.folderID)
		case c.folderPath != "":
			h.Set("X-UIPATH-FolderPath", c.folderPath)
		}
		if c.tenant != "" {
			h.Set("X-UIPATH-TenantName", c.tenant)
		}
		_, err = hc.Do(ctx, vendorhttp.Request{Method: method, URL: u, Path: path, Header: h, Body: body, Message: odataError}, out)
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

// odataJob is Orchestrator's Job entity (the fields this plugin reads).
type odataJob struct {
	ID               int64   `json:"Id"`
	Key              string  `json:"Key"`
	State            string  `json:"State"`
	Info             string  `json:"Info"`
	CreationTime     *string `json:"CreationTime"`
	StartTime        *string `json:"StartTime"`
	EndTime          *string `json:"EndTime"`
	ReleaseName      string  `json:"ReleaseName"`
	HostMachineName  string  `json:"HostMachineName"`
	OutputArguments  *string `json:"OutputArguments"`
	BatchExecutionID string  `json:"BatchExecutionKey"`
	Robot            *struct {
		Name string `json:"Name"`
	} `json:"Robot"`
}

// States maps Orchestrator's JobState names to rpacloud's.
var States = map[string]sdk.JobState{
	"Pending": sdk.JobPending, "Running": sdk.JobRunning, "Stopping": sdk.JobStopping, "Terminating": sdk.JobStopping,
	"Faulted": sdk.JobFaulted, "Successful": sdk.JobSucceeded, "Stopped": sdk.JobStopped, "Suspended": sdk.JobSuspended,
	"Resumed": sdk.JobRunning,
}

func parseTime(s *string) time.Time {
	if s == nil || *s == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, *s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func (j odataJob) toSDK() sdk.Job {
	st, ok := States[j.State]
	if !ok {
		st = sdk.JobUnknown
	}
	out := sdk.Job{
		ID: strconv.FormatInt(j.ID, 10), Package: j.ReleaseName, Machine: j.HostMachineName, State: st, VendorState: j.State,
		CreatedAt: parseTime(j.CreationTime), StartedAt: parseTime(j.StartTime), EndedAt: parseTime(j.EndTime), Info: j.Info,
	}
	if j.Robot != nil {
		out.Robot = j.Robot.Name
	}
	if j.OutputArguments != nil && json.Valid([]byte(*j.OutputArguments)) {
		out.Output = json.RawMessage(*j.OutputArguments)
	}
	return out
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// releaseKey finds the key of the release (process) named name; a GUID
// is taken as a key as it is.
func (p *Plugin) releaseKey(ctx context.Context, name string) (string, error) {
	if len(name) == 36 && strings.Count(name, "-") == 4 {
		return name, nil
	}
	p.mu.Lock()
	key, ok := p.releases[name]
	p.mu.Unlock()
	if ok {
		return key, nil
	}
	var out struct {
		Value []struct {
			Key  string `json:"Key"`
			Name string `json:"Name"`
		} `json:"value"`
	}
	q := url.Values{"$filter": {"Name eq " + quote(name) + " or ProcessKey eq " + quote(name)}, "$top": {"2"}}
	if err := p.call(ctx, http.MethodGet, "/odata/Releases", q, nil, &out); err != nil {
		return "", err
	}
	if len(out.Value) == 0 || out.Value[0].Key == "" {
		return "", fmt.Errorf("UiPath Orchestrator has no release (process) %q in the configured folder: %w", name, sdk.ErrInvalidRequest)
	}
	p.mu.Lock()
	p.releases[name] = out.Value[0].Key
	p.mu.Unlock()
	return out.Value[0].Key, nil
}

// StartJob implements sdk.Vendor: POST
// /odata/Jobs/UiPath.Server.Configuration.OData.StartJobs.
func (p *Plugin) StartJob(ctx context.Context, req sdk.StartJobRequest) (sdk.Job, error) {
	key, err := p.releaseKey(ctx, req.Package)
	if err != nil {
		return sdk.Job{}, err
	}
	input := "{}"
	if len(req.Input) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(req.Input, &obj); err != nil {
			return sdk.Job{}, fmt.Errorf("input arguments must be a JSON object: %w", sdk.ErrInvalidRequest)
		}
		input = string(req.Input)
	}
	info := map[string]any{
		"ReleaseKey": key, "Strategy": "ModernJobsCount", "JobsCount": 1, "RuntimeType": "Unattended",
		"JobPriority": "Normal", "InputArguments": input, "RobotIds": []int64{}, "MachineSessionIds": []int64{},
	}
	if req.Reference != "" {
		info["Reference"] = req.Reference
	}
	if req.Robot != "" {
		id, err := p.robotID(ctx, req.Robot)
		if err != nil {
			return sdk.Job{}, err
		}
		info["Strategy"], info["RobotIds"] = "Specific", []int64{id}
		delete(info, "JobsCount")
	}
	var out struct {
		Value []odataJob `json:"value"`
	}
	if err := p.call(ctx, http.MethodPost, "/odata/Jobs/UiPath.Server.Configuration.OData.StartJobs", nil, map[string]any{"startInfo": info}, &out); err != nil {
		return sdk.Job{}, err
	}
	if len(out.Value) != 1 {
		return sdk.Job{}, fmt.Errorf("UiPath Orchestrator StartJobs: %w: %d jobs in the reply, want 1", vendorhttp.ErrMalformed, len(out.Value))
	}
	j := out.Value[0].toSDK()
	if j.Package == "" {
		j.Package = req.Package
	}
	return j, nil
}

func (p *Plugin) robotID(ctx context.Context, name string) (int64, error) {
	var out struct {
		Value []struct {
			ID int64 `json:"Id"`
		} `json:"value"`
	}
	if err := p.call(ctx, http.MethodGet, "/odata/Robots", url.Values{"$filter": {"Name eq " + quote(name)}, "$top": {"1"}}, nil, &out); err != nil {
		return 0, err
	}
	if len(out.Value) == 0 {
		return 0, fmt.Errorf("UiPath Orchestrator has no robot %q: %w", name, sdk.ErrInvalidRequest)
	}
	return out.Value[0].ID, nil
}

// GetJob implements sdk.Vendor: GET /odata/Jobs(id).
func (p *Plugin) GetJob(ctx context.Context, id string) (sdk.Job, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return sdk.Job{}, fmt.Errorf("UiPath job id %q is not a number: %w", id, sdk.ErrInvalidRequest)
	}
	var j odataJob
	if err := p.call(ctx, http.MethodGet, fmt.Sprintf("/odata/Jobs(%d)", n), url.Values{"$expand": {"Robot"}}, nil, &j); err != nil {
		return sdk.Job{}, err
	}
	if j.ID != n || j.State == "" {
		return sdk.Job{}, fmt.Errorf("UiPath Orchestrator GET /odata/Jobs(%d): %w: no Id/State in the reply", n, vendorhttp.ErrMalformed)
	}
	return j.toSDK(), nil
}

// StopJob implements sdk.Vendor: POST .../OData.StopJobs with SoftStop or
// Kill.
func (p *Plugin) StopJob(ctx context.Context, id string, kill bool) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("UiPath job id %q is not a number: %w", id, sdk.ErrInvalidRequest)
	}
	strategy := "SoftStop"
	if kill {
		strategy = "Kill"
	}
	return p.call(ctx, http.MethodPost, "/odata/Jobs/UiPath.Server.Configuration.OData.StopJobs", nil,
		map[string]any{"jobIds": []int64{n}, "strategy": strategy}, nil)
}

// ListJobs implements sdk.Vendor: GET /odata/Jobs with $filter, $orderby,
// and $top/$skip paging.
func (p *Plugin) ListJobs(ctx context.Context, f sdk.JobFilter) ([]sdk.Job, error) {
	var filters []string
	if len(f.States) > 0 {
		var ors []string
		for _, want := range f.States {
			for name, st := range States {
				if st == want {
					ors = append(ors, "State eq "+quote(name))
				}
			}
		}
		if len(ors) == 0 {
			return nil, nil
		}
		sortStrings(ors)
		filters = append(filters, "("+strings.Join(ors, " or ")+")")
	}
	if !f.Since.IsZero() {
		filters = append(filters, "CreationTime ge "+f.Since.UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	var out []sdk.Job
	for skip := 0; ; skip += pageSize {
		top := pageSize
		if f.Limit > 0 {
			top = min(top, f.Limit-len(out))
		}
		q := url.Values{"$top": {strconv.Itoa(top)}, "$skip": {strconv.Itoa(skip)}, "$orderby": {"CreationTime desc"},
			"$expand": {"Robot"}, "$count": {"true"}}
		if len(filters) > 0 {
			q.Set("$filter", strings.Join(filters, " and "))
		}
		var page struct {
			Count *int       `json:"@odata.count"`
			Value []odataJob `json:"value"`
		}
		if err := p.call(ctx, http.MethodGet, "/odata/Jobs", q, nil, &page); err != nil {
			return nil, err
		}
		for _, j := range page.Value {
			out = append(out, j.toSDK())
		}
		switch {
		case f.Limit > 0 && len(out) >= f.Limit:
			return out[:f.Limit], nil
		case len(page.Value) < top:
			return out, nil
		case page.Count != nil && skip+len(page.Value) >= *page.Count:
			return out, nil
		}
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// RobotStates maps Orchestrator's session states to rpacloud's.
var RobotStates = map[string]sdk.RobotState{
	"Available": sdk.RobotAvailable, "Busy": sdk.RobotBusy, "Disconnected": sdk.RobotDisconnected,
	"Unresponsive": sdk.RobotUnresponsive, "Unknown": sdk.RobotUnknown,
}

// ListRobots implements sdk.Vendor: GET /odata/Sessions?$expand=Robot,
// paged.
func (p *Plugin) ListRobots(ctx context.Context) ([]sdk.VendorRobot, error) {
	var out []sdk.VendorRobot
	for skip := 0; ; skip += pageSize {
		q := url.Values{"$top": {strconv.Itoa(pageSize)}, "$skip": {strconv.Itoa(skip)}, "$expand": {"Robot"}, "$orderby": {"Id"}}
		var page struct {
			Value []struct {
				ID             int64  `json:"Id"`
				State          string `json:"State"`
				MachineName    string `json:"MachineName"`
				IsUnresponsive bool   `json:"IsUnresponsive"`
				Robot          *struct {
					ID   int64  `json:"Id"`
					Name string `json:"Name"`
				} `json:"Robot"`
			} `json:"value"`
		}
		if err := p.call(ctx, http.MethodGet, "/odata/Sessions", q, nil, &page); err != nil {
			return nil, err
		}
		for _, s := range page.Value {
			r := sdk.VendorRobot{ID: strconv.FormatInt(s.ID, 10), Machine: s.MachineName, VendorState: s.State}
			if s.Robot != nil {
				r.ID, r.Name = strconv.FormatInt(s.Robot.ID, 10), s.Robot.Name
			}
			r.State = RobotStates[s.State]
			if r.State == "" {
				r.State = sdk.RobotUnknown
			}
			if s.IsUnresponsive {
				r.State, r.VendorState = sdk.RobotUnresponsive, "Unresponsive"
			}
			out = append(out, r)
		}
		if len(page.Value) < pageSize {
			return out, nil
		}
	}
}
