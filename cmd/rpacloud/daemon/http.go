package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/enrol"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/wslimit"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
	"github.com/rpacloud/rpacloud/graph/dashboard"

	"github.com/rpacloud/rpacloud/core/robotapi"
)

func (d *Daemon) routes() http.Handler {
	res := &graph.Resolver{Client: d.db.Client, Queue: d.queue, Bus: d.bus, Providers: d.providers}
	res.Triggers = d.triggers // core/trigger: pause, resume, fire now
	d.vaultResolver(res)      // vault.go
	res.Config = d            // reload.go: applyConfig
	// The robot protocol, process specs included, is served by robotapi
	// over GraphQL.
	d.robots = &robotapi.Service{Client: d.db.Client, Queue: d.queue, Bus: d.bus,
		Bindings: res.CredentialBindings, Vault: res.Vault, Config: d.live(), Retired: d.retiredSpec, Log: d.log}
	res.Robots = d.robots
	res.Enrol = &enrol.Service{Client: d.db.Client, Bus: d.bus, Log: d.log}
	mux := http.NewServeMux()
	// Machines enrol with a join token in the body, before they have a
	// bearer token: outside auth.Middleware, inside limitBodies.
	mux.Handle("POST "+robotwire.EnrolPath, res.Enrol.Handler())
	d.monitoringRoutes(mux, res) // monitoring.go
	d.delivery(mux, res)         // delivery.go
	lim := d.opts.Config.Server.Limits
	origins := d.opts.Config.Server.CORSOrigins
	// CORS outside the token check: a browser's preflight carries no token.
	mux.Handle("/graphql", graph.CORS(origins, d.tokens.Middleware(graph.NewHandler(res, graph.HandlerOptions{
		Logger:       d.log,
		MaxBodyBytes: lim.RequestBodyBytes,
		Websocket:    wslimit.Limits{Init: lim.WebsocketInitBytes, Message: lim.WebsocketMessageBytes},
		TokenRecheck: lim.TokenRecheck,
		Tokens:       d.tokens,
		CORSOrigins:  origins,
	}))))
	mux.HandleFunc("GET /healthz", d.healthz)
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.collectors()...)
	d.metricsH = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if d.opts.Config.Server.MetricsListen == "" {
		mux.Handle("GET /metrics", d.metricsH)
	} // else served alone on its own address: metricslisten.go
	mux.Handle("GET /{$}", dashboard.Handler())
	mux.Handle("GET /index.html", dashboard.Handler())
	// The client's address behind a trusted proxy, before anything reads
	// it; the networks were checked at load, so an error here is a bug.
	proxies, err := audit.NewProxies(d.opts.Config.Server.TrustedProxies)
	if err != nil {
		panic(fmt.Sprintf("trusted_proxies passed the loader: %v", err))
	}
	return proxies.Middleware(limitBodies(lim.RequestBodyBytes, mux))
}

// limitBodies bounds the body of every request to every route, so that no
// handler, present or future, can be made to read without end: a declared
// length over max is refused at once with 413, and a streamed body fails
// the reading handler once it passes max (GraphQL answers 413 then too).
// Websocket upgrades have no body; their frames are bounded by
// core/wslimit.
func limitBodies(max int64, next http.Handler) http.Handler {
	if max <= 0 {
		max = config.DefaultRequestBodyBytes
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			w.Header().Set("Connection", "close")
			http.Error(w, fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, max), http.StatusRequestEntityTooLarge)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

type health struct {
	Status    string                    `json:"status"`
	Database  string                    `json:"database,omitempty"`
	Providers map[string]providerHealth `json:"providers,omitempty"`
	Uptime    string                    `json:"uptime,omitempty"`
	Vault     *credentials.Health       `json:"vault,omitempty"`
}

type providerHealth struct {
	Plugin    string `json:"plugin"`
	Healthy   bool   `json:"healthy"`
	Restarts  int    `json:"restarts"`
	LastError string `json:"lastError,omitempty"`
}

// healthz answers 503 only when the database is unreachable: a provider
// outage freezes scaling but the daemon still serves the queue, so it is
// reported as "degraded" with 200.
func (d *Daemon) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	h := health{Status: "ok", Database: "ok", Providers: map[string]providerHealth{}, Uptime: time.Since(d.started).Round(time.Second).String()}
	code := http.StatusOK
	if err := d.db.SQL().PingContext(ctx); err != nil {
		h.Status, h.Database, code = "down", "unreachable", http.StatusServiceUnavailable
	}
	for name, st := range d.providers.Statuses() {
		h.Providers[name] = providerHealth{Plugin: st.Plugin, Healthy: st.Healthy, Restarts: st.Restarts, LastError: st.LastError}
		if !st.Healthy && h.Status == "ok" {
			h.Status = "degraded"
		}
	}
	// Vault down is "degraded", not down: only attempts that need
	// credentials fail, everything else is served.
	vh := d.vaultHealth(ctx)
	h.Vault = &vh
	if vh.State != credentials.StateOK && vh.State != credentials.StateOff && h.Status == "ok" {
		h.Status = "degraded"
	}
	// Anyone may ask whether the daemon is alive (load balancers and
	// probes carry no token); the details — Vault's address and auth
	// method, plugin errors, uptime — tell an attacker where to look, so
	// they go only to administrators and operators bound to no customer.
	if !d.seesFleetHealth(ctx, r) {
		h = health{Status: h.Status}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(h)
}

// seesFleetHealth reports whether the request carries a token of an
// administrator or of an operator bound to no customer.
func (d *Daemon) seesFleetHealth(ctx context.Context, r *http.Request) bool {
	secret, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	p, err := d.tokens.Authenticate(ctx, secret)
	if err != nil {
		return false
	}
	return p.Role == viewer.Admin || (p.Role == viewer.Operator && p.CustomerID == nil)
}
