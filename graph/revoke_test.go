package graph_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/token"
	"github.com/rpacloud/rpacloud/graph"
)

// waitClosed reads (answering pings) until the server ends the
// connection with 4403 Forbidden, or fails after a generous deadline.
func waitClosed(t *testing.T, conn *websocket.Conn, what string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg map[string]any
		err := conn.ReadJSON(&msg)
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the websocket stayed open", what)
		}
		if err != nil {
			// 4403, not 1000: graphql-ws clients reconnect at once after
			// a normal close.
			if !websocket.IsCloseError(err, graph.CloseForbidden) {
				t.Fatalf("%s: closed with %v, want code %d", what, err, graph.CloseForbidden)
			}
			return
		}
		if msg["type"] == "ping" {
			_ = conn.WriteJSON(map[string]string{"type": "pong"})
		}
	}
}

func TestRevokedTokenEndsSubscription(t *testing.T) {
	e := newEnvWith(t, graph.HandlerOptions{TokenRecheck: 50 * time.Millisecond})
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)

	sub := func(tok string) *websocket.Conn {
		conn := dialInit(t, e, tok)
		_ = conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription{taskEvents{type}}"}})
		return conn
	}

	// A connection whose token stays valid stays open through many
	// re-checks (checked at the end).
	kept := sub(e.view.Token)

	revoked := sub(e.acmeOp.Token)
	if err := auth.Revoke(ctx, e.db.Client, "acme-op"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, revoked, "revoked token")

	expired := sub(e.admin.Token)
	e.db.Token.Update().Where(token.Name("admin")).SetExpiresAt(time.Now().Add(-time.Second)).ExecX(ctx)
	waitClosed(t, expired, "expired token")

	// The token named in the upgrade request's header (auth.Middleware)
	// is watched too.
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	hdr := http.Header{"Authorization": {"Bearer " + e.bot.Token}}
	byHeader, resp, err := d.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http"), hdr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer byHeader.Close()
	_ = byHeader.WriteJSON(map[string]any{"type": "connection_init"})
	var msg map[string]any
	_ = byHeader.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := byHeader.ReadJSON(&msg); err != nil || msg["type"] != "connection_ack" {
		t.Fatalf("init by header: %v %v", msg, err)
	}
	if err := auth.Revoke(ctx, e.db.Client, "robot/r1"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, byHeader, "revoked token given in the upgrade header")

	// The valid one is still open: it answers a ping.
	if err := kept.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	_ = kept.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if err := kept.ReadJSON(&msg); err != nil {
			t.Fatalf("valid token's websocket: %v", err)
		}
		if msg["type"] == "pong" {
			break
		}
	}
}
