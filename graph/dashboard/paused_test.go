package dashboard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

const pausedConfig = `
customer "tax" {}

pool "night-shift" {
  provider = "local"
  min      = 1
  max      = 1
  period   = "5s"
}

process "vat-filing" {
  pool    = "night-shift"
  builtin = "echo"
  owner   = "tax"
}
`

// TestDashboardShowsPausedPool pauses a pool through the API while the wall
// screen is open in headless Chromium: the pool is shown paused, with who
// paused it and why, at once (live subscription), and no longer once it
// is resumed.
func TestDashboardShowsPausedPool(t *testing.T) {
	chrome := sdktest.Chromium(t)
	d := dashtest.Start(t, binary(t), pausedConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1920, 1080))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()
	if err := chromedp.Run(bctx,
		chromedp.Navigate(d.Base+"/#token="+d.Token),
		chromedp.WaitVisible(`#conn.live`, chromedp.ByQuery),
		chromedp.WaitVisible(`.pool[data-pool="night-shift"]`, chromedp.ByQuery),
	); err != nil {
		t.Fatalf("dashboard never showed the pool: %v", err)
	}
	if err := d.Client().Do(ctx, `mutation{pausePool(name:"night-shift", reason:"patching the VMs"){name}}`, nil, nil); err != nil {
		t.Fatal(err)
	}
	var text string
	if err := chromedp.Run(bctx, chromedp.Poll(`(() => { const p = document.querySelector('.pool.paused[data-pool="night-shift"] .pause'); return p ? p.innerText : ""; })()`,
		&text, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the paused pool is not shown paused: %v", err)
	}
	for _, want := range []string{"paused by admin", "patching the VMs", "nothing is dispatched"} {
		if !strings.Contains(text, want) {
			t.Errorf("pause on screen lacks %q: %q", want, text)
		}
	}
	if err := d.Client().Do(ctx, `mutation{resumePool(name:"night-shift"){name}}`, nil, nil); err != nil {
		t.Fatal(err)
	}
	var gone bool
	if err := chromedp.Run(bctx, chromedp.Poll(`document.querySelector('.pool[data-pool="night-shift"]:not(.paused)') !== null && document.querySelector('.pool .pause') === null`,
		&gone, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the resumed pool is still shown paused: %v", err)
	}
}
