package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// With metrics_listen set, /metrics is served on that address alone: the
// main address, which a proxy or Ingress may forward whole, answers 404.
// Without it, /metrics stays on the main address.
func TestMetricsListenApart(t *testing.T) {
	for _, apart := range []bool{false, true} {
		cfg := &config.Config{}
		if apart {
			cfg.Server.MetricsListen = "127.0.0.1:0"
		}
		db := storetest.SQLite(t)
		d := &Daemon{opts: Options{Config: cfg}, log: slog.New(slog.DiscardHandler), db: db, started: time.Now(),
			providers: &scale.Providers{}, mon: &monitoring{}, tokens: auth.NewCache(db.Client, auth.Options{})}
		main := httptest.NewServer(d.routes())
		errs := make(chan error, 1)
		url, stop, err := d.serveMetricsApart(errs)
		if err != nil {
			t.Fatal(err)
		}
		get := func(u string) (int, string) {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		code, body := get(main.URL + "/metrics")
		if !apart {
			if url != "" || code != 200 || !strings.Contains(body, "rpacloud_") {
				t.Errorf("without metrics_listen: url %q, main /metrics %d", url, code)
			}
		} else {
			if code != http.StatusNotFound {
				t.Errorf("metrics_listen set: main /metrics = %d, want 404", code)
			}
			code, body = get(url)
			if !strings.HasPrefix(url, "http://127.0.0.1:") || code != 200 || !strings.Contains(body, "rpacloud_") {
				t.Errorf("metrics_listen: %s = %d %.100s", url, code, body)
			}
			if code, _ := get(strings.TrimSuffix(url, "/metrics") + "/graphql"); code != http.StatusNotFound {
				t.Errorf("the metrics address serves /graphql: %d", code)
			}
		}
		stop()
		main.Close()
		http.DefaultClient.CloseIdleConnections()
		select {
		case err := <-errs:
			t.Errorf("metrics server: %v", err)
		default:
		}
	}
	// A taken address is an error at start, naming the attribute.
	ln := httptest.NewServer(http.NotFoundHandler())
	defer ln.Close()
	d := &Daemon{opts: Options{Config: &config.Config{Server: config.Server{MetricsListen: strings.TrimPrefix(ln.URL, "http://")}}}}
	if _, _, err := d.serveMetricsApart(make(chan error, 1)); err == nil || !strings.Contains(err.Error(), "metrics_listen") {
		t.Errorf("taken address: %v", err)
	}
}
