// Package browser is the browser crawler plugin: it runs a flow (navigate,
// fill, select, click, wait_for, extract, screenshot, assert) in headless
// Chromium through the DevTools protocol (chromedp). Every request the page
// makes, its own sub-resources and scripts' fetches included, is paused by
// the DevTools Fetch domain and checked against the pool's network profile
// before it leaves the browser; a denied host fails the attempt with a
// message naming the host and the profile.
//
// One Chromium serves the plugin's runs; each run gets its own browser
// context (its own cookies and storage), so one task never sees another's
// session.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Name is the plugin's name (`crawler = "browser"`).
const Name = "browser"

// Version is the plugin's release version, set by the build.
var Version = "dev"

// DefaultStepTimeout bounds a step that declares no timeout.
const DefaultStepTimeout = 15 * time.Second

// Main serves the plugin; the daemon runs it as `rpacloud plugin crawler
// browser` or as the rpacloud-crawler-browser executable.
func Main() { sdk.ServeCrawler(New()) }

// Plugin implements sdk.Crawler.
type Plugin struct {
	mu          sync.Mutex
	chromium    string
	stepTimeout time.Duration
	headless    bool

	// The running browser, shared by runs with the same proxy.
	browserCtx    context.Context
	browserCancel context.CancelFunc
	allocCancel   context.CancelFunc
	proxy         string
}

// New returns an unconfigured plugin.
func New() *Plugin { return &Plugin{stepTimeout: DefaultStepTimeout, headless: true} }

// Info implements sdk.Crawler.
func (p *Plugin) Info(context.Context) (sdk.PluginInfo, error) {
	return sdk.PluginInfo{
		Kind: sdk.KindCrawler, Name: Name, PluginVersion: Version,
		APIVersions:  []int{sdk.CrawlerProtocolVersion},
		Capabilities: []string{"network.allow_deny", "network.proxy", "artifact.screenshot"},
		ConfigSchema: []sdk.ConfigAttribute{
			{Name: "chromium", Type: sdk.TypeString, Description: "Path of the Chromium executable; default: chromium, chromium-browser or google-chrome on PATH."},
			{Name: "step_timeout", Type: sdk.TypeDuration, Default: DefaultStepTimeout.String(), Description: "Timeout of a step that declares none."},
		},
	}, nil
}

// Configure implements sdk.Crawler.
func (p *Plugin) Configure(_ context.Context, cfg map[string]string) ([]sdk.ConfigDiagnostic, error) {
	var diags []sdk.ConfigDiagnostic
	chromium, timeout := "", DefaultStepTimeout
	for k, v := range cfg {
		switch k {
		case "chromium":
			chromium = v
		case "step_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				diags = append(diags, sdk.ConfigDiagnostic{Attribute: k, Message: "must be a positive duration such as \"15s\""})
				continue
			}
			timeout = d
		default:
			diags = append(diags, sdk.ConfigDiagnostic{Attribute: k, Message: "unknown attribute"})
		}
	}
	if chromium == "" {
		for _, c := range []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"} {
			if path, err := exec.LookPath(c); err == nil {
				chromium = path
				break
			}
		}
		if chromium == "" {
			diags = append(diags, sdk.ConfigDiagnostic{Attribute: "chromium", Message: "no Chromium found on PATH (chromium, chromium-browser, google-chrome); install Debian's chromium package or set the path"})
		}
	} else if st, err := os.Stat(chromium); err != nil || st.IsDir() {
		diags = append(diags, sdk.ConfigDiagnostic{Attribute: "chromium", Message: fmt.Sprintf("%s is not an executable file", chromium)})
	}
	if len(diags) > 0 {
		return diags, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chromium, p.stepTimeout = chromium, timeout
	return nil, nil
}

// Shutdown closes the browser.
func (p *Plugin) Shutdown(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeLocked()
	return nil
}

func (p *Plugin) closeLocked() {
	if p.browserCancel != nil {
		p.browserCancel()
		p.allocCancel()
		p.browserCtx, p.browserCancel, p.allocCancel = nil, nil, nil
	}
}

// browser returns a running browser using proxy, starting one when none
// runs, the proxy changed, or the last one died.
func (p *Plugin) browser(proxy string) (context.Context, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.chromium == "" {
		return nil, errors.New("the browser crawler is not configured (no Chromium)")
	}
	if p.browserCtx != nil && (p.proxy != proxy || p.browserCtx.Err() != nil) {
		p.closeLocked()
	}
	if p.browserCtx != nil {
		return p.browserCtx, nil
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(p.chromium),
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("headless", p.headless),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("metrics-recording-only", true),
		// Frames of other sites stay in the page's renderer, so the page
		// target's Fetch interception sees their requests too.
		chromedp.Flag("disable-features", "IsolateOrigins,site-per-process,Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.WindowSize(1280, 1024),
	}
	if proxy != "" {
		// The loopback bypass Chromium applies by default would let a page
		// reach local services around the proxy.
		opts = append(opts, chromedp.ProxyServer(proxy), chromedp.Flag("proxy-bypass-list", "<-loopback>"))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Run(bctx); err != nil { // starts Chromium
		bcancel()
		allocCancel()
		return nil, fmt.Errorf("start Chromium %s: %w", p.chromium, err)
	}
	p.browserCtx, p.browserCancel, p.allocCancel, p.proxy = bctx, bcancel, allocCancel, proxy
	return bctx, nil
}
