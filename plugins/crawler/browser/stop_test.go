package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// A crawler run is stopped through its context: when the robot cancels the
// run (an operator's stop, a deadline, a shutdown), the gRPC cancellation
// reaches the plugin, the flow ends long before its step's two-minute
// wait, and the run's page is closed: it pinged the server every 100 ms
// while it was open and pings no more (the browser itself is shared by the
// plugin's runs and stays).
func TestCancelledRunStopsItsBrowserTab(t *testing.T) {
	p := startPlugin(t)
	c := p.Crawler()
	var pings atomic.Int64
	_, base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping" {
			pings.Add(1)
			return
		}
		fmt.Fprint(w, `<html><body>filing…<script>setInterval(() => fetch("/ping"), 100)</script></body></html>`)
	}))
	flow := sdk.Flow{Name: "waits", Steps: []sdk.Step{
		{Action: sdk.ActionNavigate, URL: base + "/"},
		{Action: sdk.ActionWaitFor, Selector: "#never", Timeout: 2 * time.Minute},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, sdk.RunRequest{TaskID: "s1", Attempt: 1, Flow: flow})
		done <- err
	}()
	sdktest.Eventually(t, 60*time.Second, "the page running in Chromium", func() bool { return pings.Load() > 3 })
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not end after its context was cancelled (the step waits two minutes)")
	}
	// Pings already sent may still land; then none.
	var last int64 = -1
	sdktest.Eventually(t, 30*time.Second, "the page closed (no more pings)", func() bool {
		n := pings.Load()
		quiet := n == last
		last = n
		time.Sleep(time.Second)
		return quiet
	})
}
