package browser_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/plugins/crawler/browser"
	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest/etaxportal"
)

// The test binary doubles as the plugin: the host starts it as
// `<test binary> plugin crawler browser`, as the daemon starts rpacloud.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "plugin" {
		browser.Main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func startPlugin(t *testing.T) *sdktest.Process {
	t.Helper()
	return sdktest.StartCrawler(t, "browser", map[string]string{"chromium": sdktest.Chromium(t), "step_timeout": "10s"})
}

// vatFlow is the tax-filing example's flow (examples/tax-filing/demo).
func vatFlow(base string) sdk.Flow {
	return sdk.Flow{Name: "vat-declaration", Steps: []sdk.Step{
		{Action: sdk.ActionNavigate, URL: base + "/login"},
		{Action: sdk.ActionFill, Selector: "#username", Value: "{{credentials.etax.username}}"},
		{Action: sdk.ActionFill, Selector: "#password", Value: "{{credentials.etax.password}}"},
		{Action: sdk.ActionClick, Selector: "#login"},
		{Action: sdk.ActionWaitFor, Selector: "#company, .login-error"},
		{Action: sdk.ActionAssert, Selector: ".login-error", State: "absent", Message: "the portal refused the login"},
		{Action: sdk.ActionSelect, Selector: "#company", Value: "{{input.company}}", DataError: true},
		{Action: sdk.ActionClick, Selector: "#choose"},
		{Action: sdk.ActionWaitFor, Selector: "#vat-form"},
		{Action: sdk.ActionFill, Selector: "#period", Value: "{{input.period}}"},
		{Action: sdk.ActionSelect, Selector: "#rate", Value: "{{input.rate}}", DataError: true},
		{Action: sdk.ActionFill, Selector: "#sales", Value: "{{input.sales}}"},
		{Action: sdk.ActionFill, Selector: "#output_vat", Value: "{{input.output_vat}}"},
		{Action: sdk.ActionFill, Selector: "#input_vat", Value: "{{input.input_vat}}"},
		{Action: sdk.ActionFill, Selector: "#vat_due", Value: "{{input.vat_due}}"},
		{Action: sdk.ActionClick, Selector: "#submit"},
		{Action: sdk.ActionWaitFor, Selector: "#receipt, .field-error"},
		{Action: sdk.ActionAssert, Selector: ".field-error", State: "absent", DataError: true, Message: "the bureau refused the declaration"},
		{Action: sdk.ActionExtract, Selector: "#receipt", Output: "receipt"},
		{Action: sdk.ActionExtract, Selector: "#vat-due", Output: "vat_due"},
	}}
}

var creds = map[string]map[string]string{"etax": {"username": "filer", "password": "pw-Secr3t-42"}}

func serve(t *testing.T, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s, s.URL
}

func run(t *testing.T, c *sdk.GRPCCrawlerClient, req sdk.RunRequest) sdk.RunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := c.Run(ctx, req)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestFilingFlow(t *testing.T) {
	c := startPlugin(t).Crawler()
	p := etaxportal.New("filer", "pw-Secr3t-42")
	_, base := serve(t, p.Handler())

	good := `{"company":"91310000MA1FL0001A","period":"2026-09","rate":"0.13","sales":"1000.00","output_vat":"130.00","input_vat":"30.50","vat_due":"99.50"}`
	res := run(t, c, sdk.RunRequest{TaskID: "t1", Attempt: 1, Input: []byte(good), Credentials: creds, Flow: vatFlow(base)})
	if res.Error != nil {
		t.Fatalf("valid filing failed: %+v", res.Error)
	}
	filings := p.Filings()
	if len(filings) != 1 || res.Outputs["receipt"] != filings[0].Receipt || res.Outputs["vat_due"] != "99.50" {
		t.Fatalf("outputs %v, portal has %+v", res.Outputs, filings)
	}

	t.Run("data error", func(t *testing.T) {
		bad := strings.Replace(good, `"vat_due":"99.50"`, `"vat_due":"100.00"`, 1)
		res := run(t, c, sdk.RunRequest{TaskID: "t2", Input: []byte(bad), Credentials: creds, Flow: vatFlow(base)})
		if res.Error == nil || res.Error.Class != sdk.ErrorData {
			t.Fatalf("want a data error, got %+v", res.Error)
		}
		if !strings.Contains(res.Error.Message, "VAT due must be output VAT − input VAT = 99.50") || res.Error.Step != 17 {
			t.Errorf("message %q (step %d) does not carry the portal's reason", res.Error.Message, res.Error.Step)
		}
		if len(res.Artifacts) == 0 || res.Artifacts[0].Name != "failure.png" || !strings.HasPrefix(string(res.Artifacts[0].Data), "\x89PNG") {
			t.Errorf("no failure screenshot: %d artefacts", len(res.Artifacts))
		}
	})
	t.Run("unknown company is a data error", func(t *testing.T) {
		bad := strings.Replace(good, "91310000MA1FL0001A", "91000000NOTMINE00X", 1)
		res := run(t, c, sdk.RunRequest{TaskID: "t3", Input: []byte(bad), Credentials: creds, Flow: vatFlow(base)})
		if res.Error == nil || res.Error.Class != sdk.ErrorData || !strings.Contains(res.Error.Message, "91000000NOTMINE00X") {
			t.Fatalf("got %+v", res.Error)
		}
	})
	t.Run("wrong password is an execution error without the secret", func(t *testing.T) {
		wrong := map[string]map[string]string{"etax": {"username": "filer", "password": "not-the-password"}}
		res := run(t, c, sdk.RunRequest{TaskID: "t4", Input: []byte(good), Credentials: wrong, Flow: vatFlow(base)})
		if res.Error == nil || res.Error.Class != sdk.ErrorExecution || !strings.Contains(res.Error.Message, "Wrong user name or password") {
			t.Fatalf("got %+v", res.Error)
		}
		if strings.Contains(res.Error.Message, "not-the-password") {
			t.Errorf("message leaks the password: %s", res.Error.Message)
		}
	})
	t.Run("missing credential", func(t *testing.T) {
		res := run(t, c, sdk.RunRequest{TaskID: "t5", Input: []byte(good), Flow: vatFlow(base)})
		if res.Error == nil || !strings.Contains(res.Error.Message, `credential "etax" is not available`) {
			t.Fatalf("got %+v", res.Error)
		}
	})
}

func TestNetworkProfileDeniesPageRequests(t *testing.T) {
	c := startPlugin(t).Crawler()
	var pixelHits atomic.Int32
	mux := http.NewServeMux()
	srv, base := serve(t, mux)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	mux.HandleFunc("/pixel.png", func(w http.ResponseWriter, _ *http.Request) { pixelHits.Add(1) })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		// The page itself asks for a resource on another host name.
		fmt.Fprintf(w, `<html><body><h1 id="t">hello</h1><img src="http://localhost:%s/pixel.png"></body></html>`, port)
	})
	flow := sdk.Flow{Name: "visit", Steps: []sdk.Step{
		{Action: sdk.ActionNavigate, URL: base + "/"},
		{Action: sdk.ActionExtract, Selector: "#t", Output: "title"},
	}}
	profile := &sdk.NetworkProfile{Allow: []string{"127.0.0.1"}, Deny: []string{"*"}}
	res := run(t, c, sdk.RunRequest{TaskID: "n1", Flow: flow, Network: profile, NetworkName: "tax-bureau"})
	if res.Error == nil || res.Error.Class != sdk.ErrorExecution {
		t.Fatalf("want an execution error, got %+v (outputs %v)", res.Error, res.Outputs)
	}
	if !strings.Contains(res.Error.Message, `network profile "tax-bureau" denies host localhost`) {
		t.Errorf("message %q does not name the host and profile", res.Error.Message)
	}
	if n := pixelHits.Load(); n != 0 {
		t.Errorf("the denied request reached the server %d times", n)
	}

	// Denied as the first navigation too, before the browser sends it.
	flow.Steps[0].URL = "http://localhost:" + port + "/"
	res = run(t, c, sdk.RunRequest{TaskID: "n2", Flow: flow, Network: profile, NetworkName: "tax-bureau"})
	if res.Error == nil || !strings.Contains(res.Error.Message, "denies host localhost") {
		t.Fatalf("got %+v", res.Error)
	}
	// Allowed when the profile allows it.
	profile = &sdk.NetworkProfile{Allow: []string{"127.0.0.1", "localhost"}, Deny: []string{"*"}}
	res = run(t, c, sdk.RunRequest{TaskID: "n3", Flow: flow, Network: profile, NetworkName: "open"})
	if res.Error != nil || res.Outputs["title"] != "hello" || pixelHits.Load() != 1 {
		t.Fatalf("allowed run: %+v %v hits=%d", res.Error, res.Outputs, pixelHits.Load())
	}
}

// proxy is a minimal forward HTTP proxy that counts what it relays.
func proxy(t *testing.T) (string, *atomic.Int32) {
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() {
			http.Error(w, "not a proxy request", http.StatusBadRequest)
			return
		}
		n.Add(1)
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, bufio.NewReader(resp.Body))
	}))
	t.Cleanup(s.Close)
	return s.URL, &n
}

func TestProxy(t *testing.T) {
	c := startPlugin(t).Crawler()
	_, base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<html><body><p id="x">via proxy</p></body></html>`)
	}))
	purl, hits := proxy(t)
	flow := sdk.Flow{Name: "p", Steps: []sdk.Step{
		{Action: sdk.ActionNavigate, URL: base + "/"},
		{Action: sdk.ActionExtract, Selector: "#x", Output: "x"},
	}}
	res := run(t, c, sdk.RunRequest{TaskID: "p1", Flow: flow, Network: &sdk.NetworkProfile{Proxy: purl}, NetworkName: "egress"})
	if res.Error != nil || res.Outputs["x"] != "via proxy" {
		t.Fatalf("run: %+v %v", res.Error, res.Outputs)
	}
	if hits.Load() == 0 {
		t.Fatal("the browser did not go through the profile's proxy")
	}
}

// A plugin process killed mid-task ends the call at once with an error,
// and a new process serves the next task. (That the daemon reports the
// error as ErrPluginUnavailable and restarts the plugin by itself is the
// host's behaviour, tested in core/pluginhost.)
func TestKilledPluginIsAnExecutionError(t *testing.T) {
	p := startPlugin(t)
	c := p.Crawler()
	_, base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<html><body>never done</body></html>`)
	}))
	flow := sdk.Flow{Name: "slow", Steps: []sdk.Step{
		{Action: sdk.ActionNavigate, URL: base + "/"},
		{Action: sdk.ActionWaitFor, Selector: "#never", Timeout: time.Minute},
	}}
	pid := p.PID
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(context.Background(), sdk.RunRequest{TaskID: "k1", Flow: flow})
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond) // mid-task: waiting for #never
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run succeeded after the plugin was killed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the plugin was killed")
	}
	// The next task runs in a new process.
	p2 := startPlugin(t)
	flow.Steps[1] = sdk.Step{Action: sdk.ActionAssert, Selector: "body", TextContains: "never done"}
	res, err := p2.Crawler().Run(context.Background(), sdk.RunRequest{TaskID: "k2", Flow: flow})
	if err != nil || res.Error != nil {
		t.Fatalf("after restart: %v %+v", err, res.Error)
	}
	if p2.PID == pid || p2.PID == 0 {
		t.Errorf("pid %d after restart (was %d)", p2.PID, pid)
	}
}
