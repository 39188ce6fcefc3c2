package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

var binDir string

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "rpacloud-dashboard-test")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a daemon and robot processes")
	}
	bin, err := dashtest.Binary(binDir)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// wallConfig is a small night shift: two pools of local robots, a tax
// department, and a monitor tuned so the test sees a lost heartbeat within
// seconds rather than a minute. Idle robots check in every 20 s (the claim
// wait), so the timeout must stay above that.
const wallConfig = `
customer "tax" {
  display_name = "Tax department"
  kind         = "department"
}

pool "night-shift" {
  provider = "local"
  min      = 2
  max      = 2
  period   = "5s"
}

pool "portal" {
  provider = "local"
  min      = 1
  max      = 1
  period   = "5s"
}

process "vat-filing" {
  pool         = "night-shift"
  builtin      = "echo"
  owner        = "tax"
  max_duration = "60s"
  retries      = 1
}

process "invoice-check" {
  pool         = "portal"
  builtin      = "echo"
  owner        = "tax"
  max_duration = "60s"
  retries      = 0
}

monitor {
  heartbeat_timeout = "25s"
  interval          = "1s"
  sample_interval   = "2s"
}
`

// artefactDir is where screenshots go: $RPACLOUD_TEST_ARTIFACTS, or a
// directory under the system's temporary directory that outlives the test.
func artefactDir(t *testing.T) string {
	dir := os.Getenv("RPACLOUD_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "rpacloud-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDashboardHeartbeatLost opens the wall screen in headless Chromium,
// kills the robot process that is running a task, and waits until the
// "heartbeat lost" anomaly for that robot is on screen.
func TestDashboardHeartbeatLost(t *testing.T) {
	chrome := sdktest.Chromium(t)
	d := dashtest.Start(t, binary(t), wallConfig)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Work for the screen: a long run to interrupt, short ones, and a
	// customer whose input is wrong (a data error: run faulted).
	if err := d.Submit(ctx, "vat-filing", "tax", map[string]any{"company": "ACME Ltd", "period": "2026-10", "sleep_ms": 180000}); err != nil {
		t.Fatal(err)
	}
	var short []map[string]any
	for i := range 6 {
		short = append(short, map[string]any{"invoice": 1000 + i, "sleep_ms": 300})
	}
	short = append(short, map[string]any{"invoice": 999, "fail": "data"})
	if err := d.Submit(ctx, "invoice-check", "tax", short...); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1920, 1080))
	// The page itself gets 1920x1080, as on a wall screen.
	viewport := chromedp.EmulateViewport(1920, 1080)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()

	// The robot running the long task, as the dashboard shows it.
	var robotName string
	err := chromedp.Run(bctx,
		viewport,
		chromedp.Navigate(d.Base+"/#token="+d.Token),
		chromedp.WaitVisible(`#conn.live`, chromedp.ByQuery),
		chromedp.Poll(`(() => { const r = [...document.querySelectorAll("#running tbody tr")].find(tr => tr.textContent.includes("vat-filing")); return r ? r.children[2].textContent : ""; })()`,
			&robotName, chromedp.WithPollingTimeout(90*time.Second)),
	)
	if err != nil {
		t.Fatalf("dashboard never showed the running vat-filing task: %v", err)
	}
	pid, ok := d.RobotPID(robotName)
	if !ok {
		t.Fatalf("no process for robot %q", robotName)
	}
	t.Logf("killing robot %s (pid %d)", robotName, pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	var text string
	err = chromedp.Run(bctx,
		chromedp.Poll(fmt.Sprintf(`(() => { const a = [...document.querySelectorAll('.alert[data-rule="heartbeat_lost"]')].find(e => e.textContent.includes(%q)); return a ? a.innerText : ""; })()`, robotName),
			&text, chromedp.WithPollingTimeout(2*time.Minute), chromedp.WithPollingInterval(100*time.Millisecond)),
	)
	if err != nil {
		t.Fatalf("no heartbeat-lost anomaly on screen %s after the kill: %v", time.Since(killed).Round(time.Second), err)
	}
	t.Logf("on screen %s after the kill:\n%s", time.Since(killed).Round(time.Second), text)
	for _, want := range []string{"heartbeat lost", "vat-filing", "department", "tax", "critical"} {
		if !strings.Contains(strings.ToLower(text), strings.ToLower(want)) && !strings.Contains(text, want) {
			t.Errorf("anomaly on screen lacks %q:\n%s", want, text)
		}
	}
	// Let the charts draw a frame, then keep the picture.
	var png []byte
	if err := chromedp.Run(bctx, chromedp.Sleep(1500*time.Millisecond), chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(artefactDir(t), "dashboard-heartbeat-lost.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
	if os.Getenv("RPACLOUD_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile("screenshot.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
