package dashboard_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/graph/dashboard/dashtest"
)

// TestTwoDaemonsOnePostgres runs two `rpacloud server` processes on one
// PostgreSQL database: a batch submitted through daemon A reaches a
// subscriber of daemon B (PostgreSQL LISTEN/NOTIFY between them).
func TestTwoDaemonsOnePostgres(t *testing.T) {
	base := storetest.PostgresDSN(t)
	bin := binary(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("rpt_two_%d", os.Getpid())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") }()
	u, _ := url.Parse(base)
	u.Path = "/" + name
	const cfg = `
customer "acme" {}

pool "p" {
  provider = "local"
  min      = 0
  max      = 1
}

process "echo" {
  pool    = "p"
  builtin = "echo"
}
`
	a := dashtest.StartOn(t, bin, u.String(), cfg)
	b := dashtest.StartOn(t, bin, u.String(), cfg)
	// B's token: both daemons share the token table, so A's admin token
	// works on B as well.
	ws := "ws" + strings.TrimPrefix(b.Base, "http") + "/graphql"
	c, _, err := websocket.DefaultDialer.Dial(ws, http.Header{"Sec-WebSocket-Protocol": {"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + a.Token}}); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Type    string
		Payload struct {
			Data struct {
				Events struct{ Type, BatchID string }
			}
		}
	}
	if err := c.ReadJSON(&m); err != nil || m.Type != "connection_ack" {
		t.Fatalf("init on B: %+v %v", m, err)
	}
	q := `subscription{events(filter:{typePrefixes:["batch."]}){type batchID}}`
	raw, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]string{"query": q}})
	if err := c.WriteMessage(websocket.TextMessage, raw); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Submit(ctx, "echo", "acme", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	for {
		if err := c.ReadJSON(&m); err != nil {
			t.Fatalf("B's subscriber heard nothing from A: %v", err)
		}
		if m.Type == "next" {
			break
		}
	}
	if m.Payload.Data.Events.Type != "batch.submitted" || m.Payload.Data.Events.BatchID == "" {
		t.Fatalf("event on B: %+v", m.Payload.Data.Events)
	}
}
