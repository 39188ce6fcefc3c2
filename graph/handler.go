package graph

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/viewer"
	"github.com/rpacloud/rpacloud/core/wslimit"
	"github.com/rpacloud/rpacloud/ent"
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

// Defaults of the HandlerOptions limits.
const (
	DefaultMaxBodyBytes = 8 << 20
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
}

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
	srv := handler.New(NewExecutableSchema(Config{Resolvers: r}))
	// The websocket transport must come first: it claims upgrade requests.
	srv.AddTransport(transport.Websocket{
		// A zero Upgrader keeps gorilla's same-origin check, so a foreign
		// web page cannot ride a user's session (clients without an Origin
		// header, like the CLI and Node, are not browsers and pass).
		Upgrader:              websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096},
		InitFunc:              wsInit(r.Client),
		PingPongInterval:      15 * time.Second,
		KeepAlivePingInterval: 15 * time.Second,
		InitTimeout:           10 * time.Second,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetParserTokenLimit(MaxTokens)
	srv.Use(extension.Introspection{})
	// Before the complexity limit: its walk expands fragments unbounded.
	srv.Use(queryLimit{})
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
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
	return wslimit.Middleware(o.Websocket, limitBody(o.MaxBodyBytes, srv))
}

func wsInit(client *ent.Client) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if p, ok := viewer.FromContext(ctx); ok {
			wslimit.Authenticated(ctx)
			return viewer.NewContext(ctx, p), nil, nil
		}
		h := payload.Authorization()
		if h == "" {
			h = payload.GetString("authorization")
		}
		secret, ok := auth.BearerToken(h)
		if !ok {
			secret = h
		}
		p, err := auth.Authenticate(ctx, client, secret)
		if err != nil {
			return ctx, nil, errors.New("unauthenticated: send {\"Authorization\": \"Bearer <token>\"} in connection_init")
		}
		// Authenticated: the connection may now send full-size messages.
		wslimit.Authenticated(ctx)
		return viewer.NewContext(ctx, p), nil, nil
	}
}
