package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent/anomaly"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// browser opens a headless Chromium tab; close ends it.
func browser(t *testing.T, ctx context.Context) (tab context.Context, close func()) {
	t.Helper()
	chrome := sdktest.Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1920, 1080))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	return bctx, func() { bcancel(); acancel() }
}

const quietConfig = `
pool "quiet" {
  provider = "local"
  min      = 0
  max      = 1
  period   = "5s"
}

process "noop" {
  pool    = "quiet"
  builtin = "echo"
}
`

// TestDashboardStale: the screen shows all-clear only while it is live
// with data; when its daemon goes away it says so at once and, after the
// stale bound it was given (?stale=3), it is marked stale and the
// anomalies read "unknown", never green.
func TestDashboardStale(t *testing.T) {
	d := dashtest.Start(t, binary(t), quietConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tab, closeTab := browser(t, ctx)
	defer closeTab()

	var green bool
	if err := chromedp.Run(tab, chromedp.EmulateViewport(1920, 1080),
		chromedp.Navigate(d.Base+"/?stale=3#token="+d.Token),
		chromedp.WaitVisible(`#conn.live`, chromedp.ByQuery),
		chromedp.WaitVisible(`#all-clear.allclear`, chromedp.ByQuery),
		chromedp.Evaluate(`document.body.classList.contains("stale")`, &green),
	); err != nil {
		t.Fatalf("a live screen with no anomaly never showed all-clear: %v", err)
	}
	if green {
		t.Fatal("a live screen is marked stale")
	}

	d.Stop(t)
	stopped := time.Now()
	var banner, alerts string
	err := chromedp.Run(tab,
		chromedp.WaitVisible(`#conn.down`, chromedp.ByQuery),
		chromedp.WaitVisible(`body.stale #stale-banner`, chromedp.ByQuery),
		chromedp.Text(`#stale-banner`, &banner, chromedp.ByQuery),
		chromedp.Text(`#alerts`, &alerts, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("the screen of a stopped daemon was not marked stale: %v", err)
	}
	t.Logf("stale %s after the daemon stopped (bound 3 s): %q", time.Since(stopped).Round(100*time.Millisecond), banner)
	var allClear int
	if err := chromedp.Run(tab, chromedp.Evaluate(`document.querySelectorAll(".allclear").length`, &allClear)); err != nil {
		t.Fatal(err)
	}
	if allClear != 0 || !strings.Contains(alerts, "unknown") {
		t.Fatalf("a disconnected screen shows %q (%d all-clear boxes), want unknown", alerts, allClear)
	}
}

// fits checks, in the page, that every panel the view shows is on screen:
// nothing scrolls, and each panel's box is inside the viewport and not
// squeezed to nothing. It returns "" or what is wrong.
const fits = `(() => {
  const w = innerWidth, h = innerHeight, bad = [];
  const de = document.documentElement;
  if (de.scrollHeight > h || de.scrollWidth > w) bad.push("page scrolls: " + de.scrollWidth + "x" + de.scrollHeight);
  const panels = [...document.querySelectorAll("header, #alerts, main > .card")].filter((e) => e.getClientRects().length > 0);
  if (panels.length < 2) bad.push("only " + panels.length + " panels shown");
  for (const e of panels) {
    const r = e.getBoundingClientRect();
    const name = e.id || e.tagName;
    if (r.left < 0 || r.top < 0 || r.right > w + 0.5 || r.bottom > h + 0.5) bad.push(name + " outside the viewport: " + JSON.stringify(r));
    if (r.height < h * 0.03) bad.push(name + " squeezed to " + r.height + "px");
  }
  return bad.join("; ");
})()`

// shot keeps a PNG of the screen in the artefacts and, with
// RPACLOUD_UPDATE_SCREENSHOT=1, as name in this folder (the README shows
// them), re-encoded at the PNG encoder's best compression.
func shot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	var raw []byte
	// The viewport only: a full-page capture resizes the page for the
	// shot, and a resized screen reloads.
	if err := chromedp.Run(tab, chromedp.Sleep(1500*time.Millisecond), chromedp.CaptureScreenshot(&raw)); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artefactDir(t), name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("RPACLOUD_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDashboardSizes renders the wall screen at 1920×1080 and 3840×2160
// with 0 and then 40 open anomalies (and a vendor's robots and jobs beside
// rpacloud's), and checks that every panel is inside the viewport, the
// anomalies that do not fit are counted in "+N more", and each view of
// a wall of displays fits too.
func TestDashboardSizes(t *testing.T) {
	// The wall's configuration with runs long enough to be on screen for
	// the whole test.
	d := dashtest.Start(t, binary(t), strings.ReplaceAll(wallConfig, `max_duration = "60s"`, `max_duration = "30m"`))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := d.Submit(ctx, "vat-filing", "tax", map[string]any{"company": "ACME Ltd", "period": "2026-10", "sleep_ms": 1200000},
		map[string]any{"company": "Globex", "period": "2026-10", "sleep_ms": 1200000}); err != nil {
		t.Fatal(err)
	}
	tab, closeTab := browser(t, ctx)
	defer closeTab()

	sizes := []struct {
		w, h int64
		tag  string
	}{{1920, 1080, "1080p"}, {3840, 2160, "4k"}}
	check := func(count int, query string) {
		t.Helper()
		for _, s := range sizes {
			var bad string
			// about:blank first: the same address again would only change
			// the fragment, not load the page at its new size.
			err := chromedp.Run(tab, chromedp.Navigate("about:blank"), chromedp.EmulateViewport(s.w, s.h),
				chromedp.Navigate(d.Base+"/"+query+"#token="+d.Token),
				chromedp.WaitVisible(`#conn.live`, chromedp.ByQuery),
				chromedp.Poll(`document.querySelectorAll("#running tbody tr td[data-since]").length >= 2`, nil, chromedp.WithPollingTimeout(90*time.Second)),
			)
			if err != nil {
				t.Fatalf("%s, %d anomalies: the screen never showed the runs: %v", s.tag, count, err)
			}
			if count == 0 {
				err = chromedp.Run(tab, chromedp.WaitVisible(`#all-clear.allclear`, chromedp.ByQuery))
			} else {
				// Every open anomaly is either on screen or counted.
				err = chromedp.Run(tab, chromedp.Poll(fmt.Sprintf(`(() => { const more = document.querySelector("#alerts .more:not([hidden])");
					const n = document.querySelectorAll("#alerts .alert").length + (more ? Number(more.textContent.match(/\d+/)[0]) : 0);
					return n === %d; })()`, count), nil, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond)))
			}
			if err != nil {
				t.Fatalf("%s %s: the anomalies never showed as expected: %v", s.tag, query, err)
			}
			if err := chromedp.Run(tab, chromedp.Sleep(500*time.Millisecond), chromedp.Evaluate(fits, &bad)); err != nil {
				t.Fatal(err)
			}
			if bad != "" {
				t.Errorf("%s %s with %d anomalies: %s", s.tag, query, count, bad)
			}
			if query == "" {
				shot(t, tab, fmt.Sprintf("screen-%s-%d.png", s.tag, count))
			}
		}
	}
	check(0, "")

	// Forty anomalies that need a person (run_faulted stays open until
	// someone resolves it), written into the daemon's database as its
	// rules would, and a vendor's robots and running jobs as its poller
	// records them.
	db, err := store.Open(ctx, store.SQLite, filepath.Join(d.Dir, "rpacloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	now := time.Now().UTC()
	for i := range 40 {
		sev := anomaly.SeverityWarning
		if i%8 == 0 {
			sev = anomaly.SeverityCritical
		}
		key := fmt.Sprintf("run_faulted/screen-test/%d", i)
		db.Anomaly.Create().SetRule(anomaly.RuleRunFaulted).SetKey(key).SetOpenKey(key).SetSeverity(sev).
			SetTitle(fmt.Sprintf("invoice-check run faulted: portal refused invoice %d", 1000+i)).
			SetSince(now.Add(-time.Duration(i) * time.Minute)).SetDetectedAt(now.Add(-time.Duration(i) * time.Second)).
			SetVendor("rpacloud").SetFacts(map[string]string{"process": "invoice-check", "department": "tax", "task": fmt.Sprint(4294967297 + i), "error": "invoice number unknown to the portal"}).
			SaveX(sys)
	}
	for i, st := range []string{"busy", "busy", "available", "disconnected"} {
		events.Create(db.Event, events.VendorRobot(st), now).SetVendor("uipath").SetExternalID(fmt.Sprint("robot-", i)).SetStatus(st).SaveX(sys)
	}
	for i := range 2 {
		events.Create(db.Event, events.VendorJob("running"), now.Add(-time.Duration(i)*time.Minute)).SetVendor("uipath").
			SetExternalID(fmt.Sprintf("5e0c1f7a-%04d-4c1e-9b1e-8f3c2d6a7b9%d", i, i)).SetStatus("running").SaveX(sys)
	}
	check(40, "")
	var fleet string
	if err := chromedp.Run(tab, chromedp.Text(`#fleet`, &fleet, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fleet, "uipath") || !strings.Contains(fleet, "rpacloud") {
		t.Errorf("the fleet panel lacks a vendor: %q", fleet)
	}
	for _, v := range []string{"?view=anomalies", "?view=vendors", "?view=pools", "?customer=tax"} {
		check(40, v)
	}

}

// TestDashboardOperator: with ?operator=1 an anomaly is acknowledged, then
// resolved (the resolution typed into its card) from the screen, through
// the API's own mutations.
func TestDashboardOperator(t *testing.T) {
	d := dashtest.Start(t, binary(t), quietConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := store.Open(ctx, store.SQLite, filepath.Join(d.Dir, "rpacloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	for i := range 3 {
		key := fmt.Sprintf("run_faulted/operator-test/%d", i)
		db.Anomaly.Create().SetRule(anomaly.RuleRunFaulted).SetKey(key).SetOpenKey(key).SetSeverity(anomaly.SeverityCritical).
			SetTitle(fmt.Sprintf("noop run faulted %d", i)).SetSince(time.Now()).SetVendor("rpacloud").SaveX(sys)
	}
	tab, closeTab := browser(t, ctx)
	defer closeTab()
	var id string
	err = chromedp.Run(tab, chromedp.EmulateViewport(1920, 1080),
		chromedp.Navigate(d.Base+"/?operator=1&view=anomalies#token="+d.Token),
		chromedp.WaitVisible(`#alerts .alert button[data-act="ack"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#alerts .alert").dataset.id`, &id),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The actions below name id, so they are made once it is known.
	err = chromedp.Run(tab,
		chromedp.Click(`#alerts .alert button[data-act="ack"]`, chromedp.ByQuery, chromedp.NodeVisible),
		waitJS(fmt.Sprintf(`(() => { const a = document.querySelector('.alert[data-id="%s"]'); return !!a && !a.querySelector('button[data-act="ack"]'); })()`, id)),
		chromedp.Click(fmt.Sprintf(`.alert[data-id="%s"] button[data-act="resolve"]`, id), chromedp.ByQuery, chromedp.NodeVisible),
		chromedp.SendKeys(fmt.Sprintf(`.alert[data-id="%s"] input[name="r"]`, id), "portal fixed by the night shift", chromedp.ByQuery, chromedp.NodeVisible),
		chromedp.Click(fmt.Sprintf(`.alert[data-id="%s"] form.resolve button:not([type])`, id), chromedp.ByQuery, chromedp.NodeVisible),
		waitJS(fmt.Sprintf(`!document.querySelector('.alert[data-id="%s"]')`, id)),
	)
	if err != nil {
		var alerts, errText string
		_ = chromedp.Run(tab, chromedp.OuterHTML(`#alerts`, &alerts, chromedp.ByQuery), chromedp.Text(`#err`, &errText, chromedp.ByQuery))
		t.Fatalf("operator mode: %v\nalerts: %s\nerror shown: %s", err, alerts, errText)
	}
	var got struct {
		Node struct{ Status, AcknowledgedBy, Resolution, ResolvedBy string }
	}
	if err := d.Client().Do(ctx, `query($id:ID!){node(id:$id){... on Anomaly{status acknowledgedBy resolution resolvedBy}}}`, map[string]any{"id": id}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Node.Status != "resolved" || got.Node.Resolution != "portal fixed by the night shift" || got.Node.AcknowledgedBy == "" {
		t.Fatalf("anomaly %s after acknowledge and resolve on the screen: %+v", id, got.Node)
	}
}

// waitJS waits (30 s at most) until expr is true in the page, evaluating
// it every 100 ms.
func waitJS(expr string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ok bool
			if err := chromedp.Evaluate(expr, &ok).Do(ctx); err != nil {
				return err
			}
			if ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("still false after 30 s: %s", expr)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}
