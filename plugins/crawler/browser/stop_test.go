package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest/etaxportal"
)

// chromiumUnder lists the Chromium processes descending from pid (from
// /proc: each process's parent and command line).
func chromiumUnder(pid int) []int { return chromiumMatching(pid, "chrom") }

// renderersUnder lists the Chromium renderer processes (one per open
// site's tab) descending from pid.
func renderersUnder(pid int) []int { return chromiumMatching(pid, "--type=renderer") }

func chromiumMatching(pid int, needle string) []int {
	parent := map[int]int{}
	cmd := map[int]string{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(d, "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after
		// the last parenthesis.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
		c, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		cmd[p] = string(c)
	}
	var out []int
	for p := range parent {
		if !strings.Contains(strings.ToLower(cmd[p]), "chrom") || !strings.Contains(cmd[p], needle) {
			continue
		}
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// A crawler run is stopped through its context: when the robot cancels the
// run (an operator's stop, a deadline, a shutdown), the gRPC cancellation
// reaches the plugin, the flow on the demo e-tax portal ends long before
// its step's two-minute wait, and the run's tab is closed (its renderer
// process exits; the browser itself is shared by the plugin's runs and
// stays).
func TestCancelledRunStopsItsBrowserTab(t *testing.T) {
	p := startPlugin(t)
	c := p.Crawler()
	portal := etaxportal.New("filer", "pw-Secr3t-42")
	_, base := serve(t, portal.Handler())
	flow := sdk.Flow{Name: "waits", Steps: []sdk.Step{
		{Action: sdk.ActionNavigate, URL: base + "/login"},
		{Action: sdk.ActionWaitFor, Selector: "#never", Timeout: 2 * time.Minute},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, sdk.RunRequest{TaskID: "s1", Attempt: 1, Flow: flow})
		done <- err
	}()
	sdktest.Eventually(t, 60*time.Second, "Chromium running the flow", func() bool { return len(renderersUnder(p.PID)) > 0 })
	time.Sleep(time.Second) // the tab is waiting for #never
	during := len(renderersUnder(p.PID))
	t.Logf("renderers during the run: %d", during)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after its context was cancelled (the step waits two minutes)")
	}
	// The browser is shared by the plugin's runs; the run's tab (and its
	// renderer) is closed.
	sdktest.Eventually(t, 30*time.Second, "the cancelled run's tab closed", func() bool { return len(renderersUnder(p.PID)) < during })
	t.Logf("renderers after the cancel: %d; Chromium processes %d", len(renderersUnder(p.PID)), len(chromiumUnder(p.PID)))
}
