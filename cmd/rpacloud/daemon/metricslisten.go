package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// serveMetricsApart serves /metrics alone on the server block's
// metrics_listen address, when set. Metrics need no token (Prometheus
// scrapes without one) and name pools, processes and anomaly rules; a
// proxy or Ingress in front of the main address forwards every path, so
// an address of their own is the way to keep them inside the cluster.
// It returns the URL it serves (empty when metrics_listen is unset) and a
// func that stops it; a failure of the listener after start reaches errs,
// which stops the daemon like a failure of the main server.
func (d *Daemon) serveMetricsApart(errs chan<- error) (string, func(), error) {
	addr := d.opts.Config.Server.MetricsListen
	if addr == "" {
		return "", func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listen on metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metricsH)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errs <- fmt.Errorf("metrics server on %s: %w", addr, err):
			default:
			}
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return "http://" + ln.Addr().String() + "/metrics", stop, nil
}
