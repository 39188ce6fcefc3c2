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
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/viewer"
	"github.com/rpacloud/rpacloud/ent"
)

// Limits on what one operation may cost. Connections are capped at MaxPage
// items, so depth and complexity bound the rows one request can touch.
const (
	MaxDepth      = 12
	MaxComplexity = 5000
	MaxTokens     = 15000
)

// HandlerOptions configure the GraphQL endpoint.
type HandlerOptions struct {
	Logger *slog.Logger
}

// NewHandler returns the GraphQL endpoint: POST and GET for queries and
// mutations, websocket (graphql-transport-ws) for subscriptions. Requests
// must already have passed auth.Middleware; websocket connections
// authenticate in connection_init.
func NewHandler(r *Resolver, o HandlerOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
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
	srv.Use(extension.FixedComplexityLimit(MaxComplexity))
	srv.Use(depthLimit{max: MaxDepth})
	srv.AroundFields(guardEdgePredicates)
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
	return srv
}

func wsInit(client *ent.Client) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		if p, ok := viewer.FromContext(ctx); ok {
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
		return viewer.NewContext(ctx, p), nil, nil
	}
}

// depthLimit refuses operations nested deeper than max fields: complexity
// alone lets a narrow but very deep query through.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if n := depth(oc.Operation.SelectionSet, oc.Doc.Fragments, 0); n > d.max {
		e := gqlerror.Errorf("operation is nested %d levels deep; the limit is %d", n, d.max)
		e.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return e
	}
	return nil
}

func depth(set ast.SelectionSet, frags ast.FragmentDefinitionList, seen int) int {
	if seen > 64 { // fragment cycles are rejected by validation; stay safe anyway
		return seen
	}
	best := seen
	for _, s := range set {
		var n int
		switch s := s.(type) {
		case *ast.Field:
			if len(s.SelectionSet) == 0 {
				n = seen + 1
			} else {
				n = depth(s.SelectionSet, frags, seen+1)
			}
		case *ast.InlineFragment:
			n = depth(s.SelectionSet, frags, seen)
		case *ast.FragmentSpread:
			if f := frags.ForName(s.Name); f != nil {
				n = depth(f.SelectionSet, frags, seen)
			}
		}
		best = max(best, n)
	}
	return best
}
