package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/flowvars"
	"github.com/rpacloud/rpacloud/plugins/sdk/netpolicy"
)

// run is one attempt's state.
type run struct {
	req     sdk.RunRequest
	vars    *flowvars.Vars
	policy  *netpolicy.Policy
	timeout time.Duration
	result  sdk.RunResult

	mu     sync.Mutex
	denied error // the first request the profile refused
	shots  int
}

// Run implements sdk.Crawler.
func (p *Plugin) Run(ctx context.Context, req sdk.RunRequest) (sdk.RunResult, error) {
	r := &run{req: req, result: sdk.RunResult{Outputs: map[string]string{}}}
	p.mu.Lock()
	r.timeout = p.stepTimeout
	p.mu.Unlock()
	var err error
	if r.policy, err = netpolicy.New(req.NetworkName, req.Network); err != nil {
		return r.fail(sdk.ErrorExecution, -1, err.Error()), nil
	}
	if r.vars, err = flowvars.New(req.Input, req.Credentials); err != nil {
		return r.fail(sdk.ErrorData, -1, err.Error()), nil
	}
	if len(req.Flow.Steps) == 0 {
		return r.fail(sdk.ErrorExecution, -1, fmt.Sprintf("flow %q has no steps", req.Flow.Name)), nil
	}
	proxy := ""
	if r.policy != nil && r.policy.Proxy != nil {
		proxy = r.policy.Proxy.String()
	}
	bctx, err := p.browser(proxy)
	if err != nil {
		return sdk.RunResult{}, err
	}
	// Its own browser context: cookies and storage die with the run.
	tctx, cancel, err := newTab(bctx)
	if err != nil {
		if bctx.Err() != nil {
			return sdk.RunResult{}, fmt.Errorf("the Chromium process exited: %w", err)
		}
		return sdk.RunResult{}, fmt.Errorf("open a browser tab: %w", err)
	}
	defer cancel()
	// The attempt's deadline (or the robot giving up) ends the tab.
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	chromedp.ListenTarget(tctx, func(ev any) {
		if e, ok := ev.(*fetch.EventRequestPaused); ok {
			// Answering from the listener would block the event loop.
			go r.decide(tctx, e)
		}
	})
	if err := chromedp.Run(tctx, fetch.Enable()); err != nil {
		return sdk.RunResult{}, fmt.Errorf("enable request interception: %w", err)
	}
	for i, st := range req.Flow.Steps {
		class, err := r.step(tctx, st)
		if d := r.deniedErr(); d != nil {
			class, err = sdk.ErrorExecution, d
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			class, err = sdk.ErrorExecution, fmt.Errorf("the attempt ran out of time: %w", ctx.Err())
		}
		r.screenshotOnFailure(tctx)
		return r.fail(class, i, r.describe(i, st, err)), nil
	}
	r.result.Outputs = r.vars.Outputs
	return r.result, nil
}

// newTab opens a tab in a new browser context. A new window is needed:
// Chromium's headless mode refuses a tab in a context without one.
func newTab(bctx context.Context) (context.Context, func(), error) {
	var bcid cdp.BrowserContextID
	var id target.ID
	err := chromedp.Run(bctx, chromedp.ActionFunc(func(ctx context.Context) error {
		ex := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		var err error
		if bcid, err = target.CreateBrowserContext().WithDisposeOnDetach(true).Do(ex); err != nil {
			return err
		}
		id, err = target.CreateTarget("about:blank").WithBrowserContextID(bcid).WithNewWindow(true).Do(ex)
		return err
	}))
	if err != nil {
		return nil, nil, err
	}
	tctx, tcancel := chromedp.NewContext(bctx, chromedp.WithTargetID(id))
	var once sync.Once
	cancel := func() { once.Do(func() { closeTab(bctx, tcancel, id, bcid) }) }
	if err := chromedp.Run(tctx); err != nil {
		cancel()
		return nil, nil, err
	}
	return tctx, cancel, nil
}

// closeTab closes the tab and drops its browser context with its cookies.
func closeTab(bctx context.Context, tcancel context.CancelFunc, id target.ID, bcid cdp.BrowserContextID) {
	tcancel()
	ctx, c := context.WithTimeout(bctx, 5*time.Second)
	defer c()
	_ = chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		ex := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		_ = target.CloseTarget(id).Do(ex)
		return target.DisposeBrowserContext(bcid).Do(ex)
	}))
}

// decide lets a paused request go on or fails it, per the network profile.
func (r *run) decide(ctx context.Context, e *fetch.EventRequestPaused) {
	if err := r.policy.CheckURL(e.Request.URL); err != nil {
		r.mu.Lock()
		if r.denied == nil {
			r.denied = err
		}
		r.mu.Unlock()
		_ = chromedp.Run(ctx, fetch.FailRequest(e.RequestID, network.ErrorReasonBlockedByClient))
		return
	}
	_ = chromedp.Run(ctx, fetch.ContinueRequest(e.RequestID))
}

func (r *run) deniedErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.denied
}

func (r *run) fail(class sdk.ErrorClass, step int, msg string) sdk.RunResult {
	r.result.Error = &sdk.TaskError{Class: class, Message: msg, Step: step}
	if r.vars != nil {
		r.result.Error.Message = r.vars.Scrub(msg)
		r.result.Outputs = r.vars.Outputs
	}
	return r.result
}

func (r *run) describe(i int, st sdk.Step, err error) string {
	what := st.Action
	if st.Selector != "" {
		what += " " + fmt.Sprintf("%q", st.Selector)
	}
	where := ""
	if st.Source != "" {
		where = " at " + st.Source
	}
	return fmt.Sprintf("flow %q step %d (%s)%s: %v", r.req.Flow.Name, i+1, what, where, err)
}

func (r *run) screenshotOnFailure(tctx context.Context) {
	ctx, cancel := context.WithTimeout(tctx, 5*time.Second)
	defer cancel()
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&buf)); err == nil && len(buf) > 0 {
		r.result.Artifacts = append(r.result.Artifacts, sdk.Artifact{Name: "failure.png", ContentType: "image/png", Data: buf})
	}
}

// classOf is the class of a failed step: a step marked data_error blames
// the data, any other failure the execution.
func classOf(st sdk.Step) sdk.ErrorClass {
	if st.DataError {
		return sdk.ErrorData
	}
	return sdk.ErrorExecution
}

func (r *run) expand(s string) (string, error) {
	return r.vars.Expand(s)
}

// step runs one step and returns the class of its failure.
func (r *run) step(tctx context.Context, st sdk.Step) (sdk.ErrorClass, error) {
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = r.timeout
	}
	ctx, cancel := context.WithTimeout(tctx, timeout)
	defer cancel()
	sel, err := r.expand(st.Selector)
	if err != nil {
		return sdk.ErrorData, err
	}
	var mis *flowvars.MissingError
	switch st.Action {
	case sdk.ActionNavigate:
		u, err := r.expand(st.URL)
		if err != nil {
			return sdk.ErrorData, err
		}
		if err := r.policy.CheckURL(u); err != nil {
			return sdk.ErrorExecution, err
		}
		return sdk.ErrorExecution, timeoutMsg(chromedp.Run(ctx, chromedp.Navigate(u)), timeout)
	case sdk.ActionFill, sdk.ActionSelect:
		v, err := r.expand(st.Value)
		if errors.As(err, &mis) {
			return sdk.ErrorData, err
		} else if err != nil {
			return sdk.ErrorExecution, err
		}
		if err := chromedp.Run(ctx, chromedp.WaitReady(sel, chromedp.ByQuery)); err != nil {
			return sdk.ErrorExecution, timeoutMsg(err, timeout)
		}
		js := fmt.Sprintf(`(function(sel, v, isSelect){
  var e = document.querySelector(sel);
  if (!e) return "no element matches";
  if (isSelect) {
    if (e.tagName !== "SELECT") return "the element is not a <select>";
    var found = false;
    for (var i = 0; i < e.options.length; i++) {
      if (e.options[i].value === v || e.options[i].text.trim() === v) { e.selectedIndex = i; found = true; break; }
    }
    if (!found) return "no option has the value or text " + JSON.stringify(v);
  } else {
    e.focus(); e.value = v;
  }
  e.dispatchEvent(new Event("input", {bubbles: true}));
  e.dispatchEvent(new Event("change", {bubbles: true}));
  return "";
})(%s, %s, %t)`, jsString(sel), jsString(v), st.Action == sdk.ActionSelect)
		var msg string
		if err := chromedp.Run(ctx, chromedp.Evaluate(js, &msg)); err != nil {
			return sdk.ErrorExecution, err
		}
		if msg != "" {
			return classOf(st), errors.New(msg)
		}
		return "", nil
	case sdk.ActionClick:
		return sdk.ErrorExecution, timeoutMsg(chromedp.Run(ctx, chromedp.Click(sel, chromedp.ByQuery)), timeout)
	case sdk.ActionWaitFor:
		if err := chromedp.Run(ctx, chromedp.WaitVisible(sel, chromedp.ByQuery)); err != nil {
			return classOf(st), timeoutMsg(err, timeout)
		}
		return "", nil
	case sdk.ActionExtract:
		if st.Output == "" {
			return sdk.ErrorExecution, errors.New("extract needs an output name")
		}
		var v string
		var err error
		if st.Attribute != "" {
			var ok bool
			err = chromedp.Run(ctx, chromedp.AttributeValue(sel, st.Attribute, &v, &ok, chromedp.ByQuery))
			if err == nil && !ok {
				err = fmt.Errorf("the element has no attribute %q", st.Attribute)
			}
		} else {
			err = chromedp.Run(ctx, chromedp.Text(sel, &v, chromedp.ByQuery))
		}
		if err != nil {
			return classOf(st), timeoutMsg(err, timeout)
		}
		r.vars.Outputs[st.Output] = strings.TrimSpace(v)
		return "", nil
	case sdk.ActionScreenshot:
		var buf []byte
		if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&buf)); err != nil {
			return sdk.ErrorExecution, err
		}
		r.shots++
		name := st.Output
		if name == "" {
			name = fmt.Sprintf("screenshot-%d", r.shots)
		}
		r.result.Artifacts = append(r.result.Artifacts, sdk.Artifact{Name: name + ".png", ContentType: "image/png", Data: buf})
		return "", nil
	case sdk.ActionAssert:
		return r.assert(ctx, st, sel)
	}
	return sdk.ErrorExecution, fmt.Errorf("the browser crawler has no step %q", st.Action)
}

func (r *run) assert(ctx context.Context, st sdk.Step, sel string) (sdk.ErrorClass, error) {
	want, err := r.expand(st.TextContains)
	if err != nil {
		return sdk.ErrorData, err
	}
	js := fmt.Sprintf(`Array.from(document.querySelectorAll(%s)).map(function(e){ return (e.innerText || e.textContent || "").trim(); })`, jsString(sel))
	var texts []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(js, &texts)); err != nil {
		return sdk.ErrorExecution, err
	}
	var matched []string
	for _, t := range texts {
		if want == "" || strings.Contains(t, want) {
			matched = append(matched, t)
		}
	}
	absent := st.State == "absent"
	if absent == (len(matched) == 0) {
		return "", nil
	}
	msg := st.Message
	if msg == "" {
		if absent {
			msg = fmt.Sprintf("%q is on the page", sel)
		} else {
			msg = fmt.Sprintf("%q is not on the page", sel)
		}
		if want != "" {
			msg += fmt.Sprintf(" with text %q", want)
		}
	}
	if len(matched) > 0 {
		msg += ": " + strings.Join(matched, "; ")
	}
	return classOf(st), errors.New(msg)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func timeoutMsg(err error, d time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("not done within %s", d)
	}
	return err
}
