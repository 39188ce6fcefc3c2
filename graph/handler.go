package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/rs/cors"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/wslimit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// Limits on what one operation may cost. Connections are capped at MaxPage
// items, so depth and complexity bound the rows one request can touch;
// MaxFields and MaxAliases bound the work of computing them (see
// querylimit.go). Every field costs at least 1 in the complexity count, so
// MaxFields above MaxComplexity refuses nothing complexity would accept.
const (
	MaxDepth      = 12
	MaxComplexity = 5000
	MaxTokens     = 15000
	MaxFields     = 2 * MaxComplexity
	MaxAliases    = 500
)

// Defaults of the HandlerOptions limits: the configuration's, so a
// handler built without options limits like a daemon with no limits block.
const (
	DefaultMaxBodyBytes = config.DefaultRequestBodyBytes
	DefaultTokenRecheck = config.DefaultTokenRecheck
)

// HandlerOptions configure the GraphQL endpoint.
type HandlerOptions struct {
	Logger *slog.Logger
	// MaxBodyBytes bounds a POST body; larger ones get 413. Default
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Websocket bounds one client message before and after
	// connection_init is accepted; zero fields mean wslimit's defaults.
	Websocket wslimit.Limits
	// TokenRecheck is how often an open websocket checks that its token
	// is still valid; a revoked or expired token ends the connection.
	// Default DefaultTokenRecheck.
	TokenRecheck time.Duration
	// Tokens answers websocket connection_init from the daemon's token
	// cache; nil: each is a database query.
	Tokens *auth.Cache
	// CORSOrigins are the other web origins whose pages may open the
	// websocket (the server block's cors_origins, lower case); the same
	// list goes to CORS for the HTTP requests.
	CORSOrigins []string
}

// QueryCacheSize is how many parsed operations the GraphQL endpoint keeps.
const QueryCacheSize = 256

// NewHandler returns the GraphQL endpoint: POST and GET for queries and
// mutations, websocket (graphql-transport-ws) for subscriptions. Requests
// must already have passed auth.Middleware; websocket connections
// authenticate in connection_init.
func NewHandler(r *Resolver, o HandlerOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.TokenRecheck <= 0 {
		o.TokenRecheck = DefaultTokenRecheck
	}
	es := NewExecutableSchema(Config{Resolvers: r})
	srv := handler.New(es)
	// The websocket transport must come first: it claims upgrade requests.
	srv.AddTransport(transport.Websocket{
		// Gorilla's same-origin check plus the allowed origins, so a
		// foreign web page cannot ride a user's session (clients without
		// an Origin header, like the CLI and Node, are not browsers and
		// pass).
		Upgrader: websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096,
			CheckOrigin: checkOrigin(o.CORSOrigins)},
		InitFunc:              wsInit(r.Client, o.Tokens, o.TokenRecheck, o.Logger),
		PingPongInterval:      15 * time.Second,
		KeepAlivePingInterval: 15 * time.Second,
		InitTimeout:           10 * time.Second,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetParserTokenLimit(MaxTokens)
	// Robots send the same few operations thousands of times a second;
	// parsing and validating each again was a large part of a request's
	// CPU. Keyed by the query text; bounded (a document is at most
	// MaxTokens tokens), and only documents that parsed and validated are
	// kept.
	srv.SetQueryCache(lru.New[*ast.QueryDocument](QueryCacheSize))
	srv.Use(extension.Introspection{})
	// Before the complexity limit: its walk expands fragments unbounded.
	srv.Use(queryLimit{})
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
	srv.AroundFields(guardEdgePredicates)
	if r.Client != nil {
		srv.AroundRootFields(auditMutations(es.Schema(), r.Client, o.Logger)) // audit.go
	}
	srv.SetRecoverFunc(func(ctx context.Context, err any) error {
		o.Logger.Error("graphql panic", "err", err)
		return gqlerror.Errorf("internal server error")
	})
	srv.SetErrorPresenter(func(ctx context.Context, err error) *gqlerror.Error {
		var gerr *gqlerror.Error
		if errors.As(err, &gerr) && gerr.Extensions != nil {
			return graphql.DefaultErrorPresenter(ctx, err)
		}
		e := graphql.DefaultErrorPresenter(ctx, err)
		if ent.IsNotFound(err) {
			e.Extensions = map[string]any{"code": CodeNotFound}
		} else if isPrivacyDenied(err) {
			e.Message = "forbidden"
			e.Extensions = map[string]any{"code": CodeForbidden}
		}
		return e
	})
	// The audit trail records where each request came from.
	return audit.Middleware(wslimit.Middleware(o.Websocket, limitBody(o.MaxBodyBytes, srv)))
}

// Close codes of graphql-transport-ws for refused credentials: graphql-ws
// clients do not retry 4401 and retry 4403 only as their shouldRetry
// allows, with back-off.
const (
	CloseUnauthorized = 4401 // no, unknown, expired or revoked token at connection_init
	CloseForbidden    = 4403 // the token was revoked or expired while connected
)

// wsInit authenticates a websocket in connection_init (or takes the
// principal auth.Middleware found in the upgrade request's header), raises
// the connection's read limit from the pre-authentication one, and keeps
// checking the token for as long as the connection lives: gqlgen closes
// the connection when the context returned here is cancelled, which
// watchToken does once the token is revoked or expires. Checking the
// database rather than listening for local revocations is what makes a
// revocation on one daemon end the streams held open by every other
// daemon sharing the database.
func wsInit(client *ent.Client, tokens *auth.Cache, every time.Duration, log *slog.Logger) transport.WebsocketInitFunc {
	authenticate := func(ctx context.Context, secret string) (viewer.Principal, error) {
		return auth.Authenticate(ctx, client, secret)
	}
	if tokens != nil {
		authenticate = tokens.Authenticate
	}
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		p, ok := viewer.FromContext(ctx)
		if !ok {
			h := payload.Authorization()
			if h == "" {
				h = payload.GetString("authorization")
			}
			secret, ok := auth.BearerToken(h)
			if !ok {
				secret = h
			}
			var err error
			if p, err = authenticate(ctx, secret); err != nil {
				// 4401, not gqlgen's 1000: graphql-ws clients take 1000
				// for a normal end and reconnect at once, for ever.
				why := "no token"
				if secret != "" {
					why = "unknown, expired or revoked token"
				}
				if !errors.Is(err, auth.ErrUnauthenticated) {
					why = "token not checked: " + err.Error()
				}
				wslimit.CloseWith(ctx, CloseUnauthorized, "Unauthorized")
				log.Info("websocket refused", "code", CloseUnauthorized, "why", why, "remote", audit.RequestFrom(ctx).RemoteAddr)
				return ctx, nil, errors.New("unauthenticated: send {\"Authorization\": \"Bearer <token>\"} in connection_init")
			}
		}
		wslimit.Authenticated(ctx)
		ctx, cancel := context.WithCancelCause(viewer.NewContext(ctx, p))
		go watchToken(ctx, cancel, client, p, every, log)
		return ctx, nil, nil
	}
}

// watchToken cancels ctx once the principal's token is revoked, expired
// or deleted. It returns when ctx ends: the connection's context ends
// with the request, so no watcher outlives its websocket. A database error
// keeps the connection (the next check decides) rather than dropping
// every stream during a database blip.
func watchToken(ctx context.Context, cancel context.CancelCauseFunc, client *ent.Client, p viewer.Principal, every time.Duration, log *slog.Logger) {
	defer cancel(nil)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		exp, err := auth.Check(ctx, client, p.TokenID)
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			log.Info("closing websocket: token no longer valid", "token", p.Name, "code", CloseForbidden)
			// 4403: the client is told to stop, not to reconnect at once.
			wslimit.CloseWith(ctx, CloseForbidden, "Forbidden: token revoked or expired")
			cancel(fmt.Errorf("websocket of token %q: %w", p.Name, err))
			return
		case err != nil && ctx.Err() == nil:
			log.Warn("websocket token check", "token", p.Name, "err", err)
		}
		next := every
		if exp != nil {
			// Close at the expiry itself, not up to one period late.
			next = min(next, max(time.Until(*exp), time.Millisecond))
		}
		t.Reset(next)
	}
}

// checkOrigin accepts a websocket upgrade without an Origin header (not a
// browser), from the daemon's own origin (gorilla's default check) or from
// one of allowed.
func checkOrigin(allowed []string) func(*http.Request) bool {
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		set[strings.ToLower(o)] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || set[strings.ToLower(origin)] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
}

// CORS lets the pages of the allowed origins (the server block's
// cors_origins) call the API from a browser: it answers their preflight
// OPTIONS itself, before authentication (a preflight carries no token),
// and adds Access-Control-Allow-Origin to their requests. Other origins
// get no CORS headers, so browsers keep their pages out; with no origins
// it is next itself (same origin only). Tokens travel in the
// Authorization header, never in cookies, so credentials are not allowed.
func CORS(allowed []string, next http.Handler) http.Handler {
	if len(allowed) == 0 {
		return next
	}
	return cors.New(cors.Options{
		AllowedOrigins: allowed,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", "X-Request-Id"},
		MaxAge:         600,
	}).Handler(next)
}
