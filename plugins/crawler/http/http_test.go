package httpcrawler_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	httpcrawler "github.com/rpacloud/rpacloud/plugins/crawler/http"
	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest/etaxportal"
)

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == "plugin" {
		httpcrawler.Main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func startPlugin(t *testing.T) *sdk.GRPCCrawlerClient {
	t.Helper()
	return sdktest.StartCrawler(t, "http", map[string]string{"step_timeout": "10s"}).Crawler()
}

func run(t *testing.T, c *sdk.GRPCCrawlerClient, req sdk.RunRequest) sdk.RunResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Run(ctx, req)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// formFlow files a VAT declaration through the portal's HTML forms, CSRF
// tokens and redirects included, then checks it through the JSON API.
func formFlow(base string) sdk.Flow {
	return sdk.Flow{Name: "vat-http", Steps: []sdk.Step{
		{Action: sdk.ActionRequest, URL: base + "/login"},
		{Action: sdk.ActionExtract, Selector: "input[name=csrf]", Attribute: "value", Output: "csrf"},
		{Action: sdk.ActionRequest, URL: "/login", Form: map[string]string{
			"csrf": "{{outputs.csrf}}", "username": "{{credentials.etax.username}}", "password": "{{credentials.etax.password}}"}},
		{Action: sdk.ActionAssert, Selector: ".login-error", State: "absent", Message: "the portal refused the login"},
		{Action: sdk.ActionExtract, Selector: "input[name=csrf]", Attribute: "value", Output: "csrf2"},
		{Action: sdk.ActionRequest, URL: "/companies", Form: map[string]string{"csrf": "{{outputs.csrf2}}", "company": "{{input.company}}"}},
		{Action: sdk.ActionAssert, Selector: ".form-error", State: "absent", DataError: true},
		{Action: sdk.ActionRequest, URL: "/vat", Form: map[string]string{
			"csrf": "{{outputs.csrf2}}", "period": "{{input.period}}", "rate": "{{input.rate}}", "sales": "{{input.sales}}",
			"output_vat": "{{input.output_vat}}", "input_vat": "{{input.input_vat}}", "vat_due": "{{input.vat_due}}"}},
		{Action: sdk.ActionAssert, Selector: ".field-error", State: "absent", DataError: true, Message: "the bureau refused the declaration"},
		{Action: sdk.ActionExtract, Selector: "#receipt", Output: "receipt"},
		{Action: sdk.ActionRequest, URL: "/api/login", JSON: `{"username":"{{credentials.etax.username}}","password":"{{credentials.etax.password}}"}`, Status: 200},
		{Action: sdk.ActionRequest, URL: "/api/filings/{{outputs.receipt}}", Status: 200},
		{Action: sdk.ActionExtract, JSONPath: "filing.vat_due", Output: "vat_due"},
		{Action: sdk.ActionAssert, JSONPath: "status", TextContains: "accepted"},
	}}
}

var creds = map[string]map[string]string{"etax": {"username": "filer", "password": "pw-Secr3t-42"}}

const good = `{"company":"91440300MA1FL0003C","period":"2026-08","rate":0.13,"sales":2000,"output_vat":260,"input_vat":60.25,"vat_due":199.75}`

func TestFormFlow(t *testing.T) {
	c := startPlugin(t)
	p := etaxportal.New("filer", "pw-Secr3t-42")
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()

	res := run(t, c, sdk.RunRequest{TaskID: "h1", Input: []byte(good), Credentials: creds, Flow: formFlow(srv.URL)})
	if res.Error != nil {
		t.Fatalf("run: %+v", res.Error)
	}
	f := p.Filings()
	if len(f) != 1 || res.Outputs["receipt"] != f[0].Receipt || res.Outputs["vat_due"] != "199.75" {
		t.Fatalf("outputs %v, portal %+v", res.Outputs, f)
	}
	if _, ok := res.Outputs["csrf"]; !ok {
		t.Error("csrf output missing")
	}

	bad := strings.Replace(good, `"period":"2026-08"`, `"period":"2026-8"`, 1)
	res = run(t, c, sdk.RunRequest{TaskID: "h2", Input: []byte(bad), Credentials: creds, Flow: formFlow(srv.URL)})
	if res.Error == nil || res.Error.Class != sdk.ErrorData || !strings.Contains(res.Error.Message, "period: Period must be YYYY-MM.") {
		t.Fatalf("want data error, got %+v", res.Error)
	}
	if len(res.Artifacts) != 1 || !strings.Contains(string(res.Artifacts[0].Data), "field-error") {
		t.Errorf("the failing response is not kept: %d artefacts", len(res.Artifacts))
	}

	wrong := map[string]map[string]string{"etax": {"username": "filer", "password": "nope-nope"}}
	res = run(t, c, sdk.RunRequest{TaskID: "h3", Input: []byte(good), Credentials: wrong, Flow: formFlow(srv.URL)})
	if res.Error == nil || res.Error.Class != sdk.ErrorExecution || strings.Contains(res.Error.Message, "nope-nope") {
		t.Fatalf("got %+v", res.Error)
	}
}

func TestNetworkProfile(t *testing.T) {
	c := startPlugin(t)
	var deniedHits atomic.Int32
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	mux.HandleFunc("/secret", func(w http.ResponseWriter, _ *http.Request) { deniedHits.Add(1) })
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+port+"/secret", http.StatusFound)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"v":"fine"}`) })
	profile := &sdk.NetworkProfile{Allow: []string{"127.0.0.0/8"}, Deny: []string{"*"}}

	flow := sdk.Flow{Name: "net", Steps: []sdk.Step{{Action: sdk.ActionRequest, URL: srv.URL + "/hop"}}}
	res := run(t, c, sdk.RunRequest{Flow: flow, Network: profile, NetworkName: "tax-bureau"})
	if res.Error == nil || res.Error.Class != sdk.ErrorExecution || !strings.Contains(res.Error.Message, `network profile "tax-bureau" denies host localhost`) {
		t.Fatalf("redirect to a denied host: %+v", res.Error)
	}
	flow.Steps[0].URL = "http://localhost:" + port + "/secret"
	res = run(t, c, sdk.RunRequest{Flow: flow, Network: profile, NetworkName: "tax-bureau"})
	if res.Error == nil || !strings.Contains(res.Error.Message, "denies host localhost") {
		t.Fatalf("denied host: %+v", res.Error)
	}
	if deniedHits.Load() != 0 {
		t.Fatalf("a denied request reached the server")
	}

	// Through a proxy.
	var relayed atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relayed.Add(1)
		resp, err := http.DefaultTransport.RoundTrip(r.Clone(context.Background()))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer proxy.Close()
	flow = sdk.Flow{Name: "proxied", Steps: []sdk.Step{
		{Action: sdk.ActionRequest, URL: srv.URL + "/ok"},
		{Action: sdk.ActionExtract, JSONPath: "v", Output: "v"},
	}}
	res = run(t, c, sdk.RunRequest{Flow: flow, Network: &sdk.NetworkProfile{Proxy: proxy.URL, Allow: []string{"127.0.0.1"}}, NetworkName: "egress"})
	if res.Error != nil || res.Outputs["v"] != "fine" || relayed.Load() != 1 {
		t.Fatalf("proxied: %+v %v relayed=%d", res.Error, res.Outputs, relayed.Load())
	}
}
