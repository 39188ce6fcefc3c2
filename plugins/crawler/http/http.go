// Package httpcrawler is the HTTP crawler plugin: it runs a flow of HTTP
// requests (form posts, JSON APIs) without a browser, for services that need
// no JavaScript. Each run has its own cookie jar; redirects are followed;
// values such as CSRF tokens are extracted from a response (a CSS selector
// on HTML, a regular expression, or a JSON path) and used by later steps as
// {{outputs.NAME}}. Every request, redirects included, goes through the
// pool's network profile: its proxy, its DNS servers, and its allow/deny
// host patterns, checked before a connection is made.
package httpcrawler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/flowvars"
	"github.com/rpacloud/rpacloud/plugins/sdk/netpolicy"
)

// Name is the plugin's name (`crawler = "http"`).
const Name = "http"

// Version is the plugin's release version, set by the build.
var Version = "dev"

// Limits.
const (
	DefaultStepTimeout = 30 * time.Second
	maxBody            = 10 << 20
	maxRedirects       = 10
)

// Main serves the plugin.
func Main() { sdk.ServeCrawler(New()) }

// Plugin implements sdk.Crawler.
type Plugin struct {
	mu          sync.Mutex
	stepTimeout time.Duration
	userAgent   string
}

// New returns a plugin with default settings.
func New() *Plugin {
	return &Plugin{stepTimeout: DefaultStepTimeout, userAgent: "rpacloud-crawler-http/" + Version}
}

// Info implements sdk.Crawler.
func (p *Plugin) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind: sdk.KindCrawler, Name: Name, PluginVersion: Version,
		APIVersions:  []int{sdk.CrawlerProtocolVersion},
		Capabilities: []string{"network.allow_deny", "network.proxy", "network.dns"},
		ConfigSchema: []sdk.ConfigAttribute{
			{Name: "step_timeout", Type: sdk.TypeDuration, Default: DefaultStepTimeout.String(), Description: "Timeout of a step that declares none."},
			{Name: "user_agent", Type: sdk.TypeString, Description: "User-Agent header of every request."},
		},
	}, nil
}

// Configure implements sdk.Crawler.
func (p *Plugin) Configure(_ context.Context, cfg map[string]string) ([]sdk.ConfigDiagnostic, error) {
	var diags []sdk.ConfigDiagnostic
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range cfg {
		switch k {
		case "step_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				diags = append(diags, sdk.ConfigDiagnostic{Attribute: k, Message: "must be a positive duration such as \"30s\""})
				continue
			}
			p.stepTimeout = d
		case "user_agent":
			p.userAgent = v
		default:
			diags = append(diags, sdk.ConfigDiagnostic{Attribute: k, Message: "unknown attribute"})
		}
	}
	return diags, nil
}

type response struct {
	status int
	url    string
	header http.Header
	body   []byte
}

type run struct {
	req     sdk.RunRequest
	vars    *flowvars.Vars
	policy  *netpolicy.Policy
	client  *http.Client
	timeout time.Duration
	ua      string
	last    *response
}

// Run implements sdk.Crawler.
func (p *Plugin) Run(ctx context.Context, req sdk.RunRequest) (sdk.RunResult, error) {
	p.mu.Lock()
	r := &run{req: req, timeout: p.stepTimeout, ua: p.userAgent}
	p.mu.Unlock()
	res := sdk.RunResult{Outputs: map[string]string{}}
	fail := func(class sdk.ErrorClass, step int, msg string) (sdk.RunResult, error) {
		if r.vars != nil {
			msg = r.vars.Scrub(msg)
			res.Outputs = r.vars.Outputs
		}
		res.Error = &sdk.TaskError{Class: class, Message: msg, Step: step}
		if r.last != nil && len(r.last.body) > 0 {
			res.Artifacts = append(res.Artifacts, sdk.Artifact{Name: "failure-response", ContentType: r.last.header.Get("Content-Type"), Data: r.last.body})
		}
		return res, nil
	}
	var err error
	if r.policy, err = netpolicy.New(req.NetworkName, req.Network); err != nil {
		return fail(sdk.ErrorExecution, -1, err.Error())
	}
	if r.vars, err = flowvars.New(req.Input, req.Credentials); err != nil {
		return fail(sdk.ErrorData, -1, err.Error())
	}
	jar, _ := cookiejar.New(nil)
	transport := r.policy.Transport()
	defer transport.CloseIdleConnections()
	r.client = &http.Client{Jar: jar, Transport: transport, CheckRedirect: func(rq *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return r.policy.CheckURL(rq.URL.String())
	}}
	for i, st := range req.Flow.Steps {
		class, err := r.step(ctx, st)
		if err == nil {
			continue
		}
		var de *netpolicy.DeniedError
		if errors.As(err, &de) {
			class, err = sdk.ErrorExecution, de
		}
		if ctx.Err() != nil {
			class, err = sdk.ErrorExecution, fmt.Errorf("the attempt ran out of time: %w", ctx.Err())
		}
		what := st.Action
		if st.URL != "" {
			what += " " + st.URL
		} else if st.Selector != "" {
			what += fmt.Sprintf(" %q", st.Selector)
		}
		where := ""
		if st.Source != "" {
			where = " at " + st.Source
		}
		return fail(class, i, fmt.Sprintf("flow %q step %d (%s)%s: %v", req.Flow.Name, i+1, what, where, err))
	}
	res.Outputs = r.vars.Outputs
	return res, nil
}

func classOf(st sdk.Step) sdk.ErrorClass {
	if st.DataError {
		return sdk.ErrorData
	}
	return sdk.ErrorExecution
}

func (r *run) step(ctx context.Context, st sdk.Step) (sdk.ErrorClass, error) {
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = r.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch st.Action {
	case sdk.ActionRequest, sdk.ActionNavigate:
		return r.request(ctx, st)
	case sdk.ActionExtract:
		if st.Output == "" {
			return sdk.ErrorExecution, errors.New("extract needs an output name")
		}
		vals, err := r.find(st)
		if err != nil {
			return sdk.ErrorExecution, err
		}
		if len(vals) == 0 {
			return classOf(st), errors.New("nothing matched in the last response")
		}
		r.vars.Outputs[st.Output] = strings.TrimSpace(vals[0])
		return "", nil
	case sdk.ActionAssert:
		return r.assert(st)
	}
	return sdk.ErrorExecution, fmt.Errorf("the HTTP crawler has no step %q (it has request, extract and assert)", st.Action)
}

func (r *run) request(ctx context.Context, st sdk.Step) (sdk.ErrorClass, error) {
	u, err := r.vars.Expand(st.URL)
	if err != nil {
		return sdk.ErrorData, err
	}
	if r.last != nil { // relative URLs resolve against the last page
		if base, err := url.Parse(r.last.url); err == nil {
			if ref, err := url.Parse(u); err == nil {
				u = base.ResolveReference(ref).String()
			}
		}
	}
	form, err := r.vars.ExpandMap(st.Form)
	if err != nil {
		return sdk.ErrorData, err
	}
	headers, err := r.vars.ExpandMap(st.Headers)
	if err != nil {
		return sdk.ErrorData, err
	}
	var body io.Reader
	ctype := ""
	method := strings.ToUpper(st.Method)
	switch {
	case st.JSON != "":
		js, err := r.vars.Expand(st.JSON)
		if err != nil {
			return sdk.ErrorData, err
		}
		if !json.Valid([]byte(js)) {
			return sdk.ErrorData, errors.New("the json body is not valid JSON after expanding its variables")
		}
		body, ctype = strings.NewReader(js), "application/json"
	case len(form) > 0:
		vals := url.Values{}
		for k, v := range form {
			vals.Set(k, v)
		}
		body, ctype = strings.NewReader(vals.Encode()), "application/x-www-form-urlencoded"
	}
	if method == "" {
		method = http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
	}
	if err := r.policy.CheckURL(u); err != nil {
		return sdk.ErrorExecution, err
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return sdk.ErrorExecution, err
	}
	hreq.Header.Set("User-Agent", r.ua)
	if ctype != "" {
		hreq.Header.Set("Content-Type", ctype)
	}
	for k, v := range headers {
		hreq.Header.Set(k, v)
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		var de *netpolicy.DeniedError
		if errors.As(err, &de) {
			return sdk.ErrorExecution, de
		}
		return sdk.ErrorExecution, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return sdk.ErrorExecution, fmt.Errorf("read the response: %w", err)
	}
	if len(b) > maxBody {
		return sdk.ErrorExecution, fmt.Errorf("the response is larger than %d bytes", maxBody)
	}
	r.last = &response{status: resp.StatusCode, url: resp.Request.URL.String(), header: resp.Header, body: b}
	switch {
	case st.Status != 0 && resp.StatusCode != st.Status:
		return classOf(st), fmt.Errorf("status %d, want %d%s", resp.StatusCode, st.Status, snippet(b))
	case st.Status == 0 && resp.StatusCode >= 500:
		return sdk.ErrorExecution, fmt.Errorf("the server failed: status %d%s", resp.StatusCode, snippet(b))
	}
	return "", nil
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// find returns the values the step's selector, regex or json_path picks
// from the last response.
func (r *run) find(st sdk.Step) ([]string, error) {
	if r.last == nil {
		return nil, errors.New("no response yet: put a request step first")
	}
	switch {
	case st.Regex != "":
		re, err := regexp.Compile(st.Regex)
		if err != nil {
			return nil, fmt.Errorf("regex: %w", err)
		}
		var out []string
		for _, m := range re.FindAllStringSubmatch(string(r.last.body), -1) {
			if len(m) > 1 {
				out = append(out, m[1])
			} else {
				out = append(out, m[0])
			}
		}
		return out, nil
	case st.JSONPath != "":
		var doc any
		if err := json.Unmarshal(r.last.body, &doc); err != nil {
			return nil, fmt.Errorf("the response is not JSON (status %d)%s", r.last.status, snippet(r.last.body))
		}
		v, ok := jsonPath(doc, st.JSONPath)
		if !ok {
			return nil, nil
		}
		return []string{v}, nil
	case st.Selector != "":
		return selectHTML(r.last.body, st.Selector, st.Attribute)
	}
	return nil, errors.New("extract and assert need a selector, regex or json_path")
}

func jsonPath(doc any, path string) (string, bool) {
	cur := doc
	for _, part := range strings.Split(strings.TrimPrefix(path, "$."), ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[part]
			if !ok {
				return "", false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return "", false
			}
			cur = c[i]
		default:
			return "", false
		}
	}
	switch c := cur.(type) {
	case string:
		return c, true
	case float64:
		return strconv.FormatFloat(c, 'f', -1, 64), true
	case nil:
		return "", true
	default:
		b, _ := json.Marshal(c)
		return string(b), true
	}
}

func (r *run) assert(st sdk.Step) (sdk.ErrorClass, error) {
	want, err := r.vars.Expand(st.TextContains)
	if err != nil {
		return sdk.ErrorData, err
	}
	var vals []string
	if st.Selector == "" && st.Regex == "" && st.JSONPath == "" {
		if r.last == nil {
			return sdk.ErrorExecution, errors.New("no response yet: put a request step first")
		}
		vals = []string{string(r.last.body)}
	} else if vals, err = r.find(st); err != nil {
		return sdk.ErrorExecution, err
	}
	var matched []string
	for _, v := range vals {
		if want == "" || strings.Contains(v, want) {
			matched = append(matched, strings.TrimSpace(v))
		}
	}
	absent := st.State == "absent"
	if absent == (len(matched) == 0) {
		return "", nil
	}
	msg := st.Message
	if msg == "" {
		msg = "assertion failed"
		if absent {
			msg = "found what must be absent"
		}
	}
	if absent && len(matched) > 0 {
		msg += ": " + strings.Join(matched, "; ")
	}
	return classOf(st), errors.New(msg)
}
