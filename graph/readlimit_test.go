package graph_test

import (
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/graph"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

func TestPostBodyLimit(t *testing.T) {
	e := newEnv(t)
	h := graph.NewHandler(&graph.Resolver{Client: e.db.Client}, graph.HandlerOptions{MaxBodyBytes: 1 << 20})
	for _, declared := range []bool{false, true} {
		z := sdktest.NewZeros(100 << 20)
		req := httptest.NewRequest(http.MethodPost, "/graphql", z)
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = -1 // streamed, as chunked
		if declared {
			req.ContentLength = 100 << 20
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), graph.CodeRequestTooLarge) {
			t.Errorf("100 MB body (declared %v): %d %s", declared, rec.Code, rec.Body)
		}
		if got := z.Taken(); got > 2<<20 {
			t.Errorf("100 MB body (declared %v): %d bytes read for a 1 MiB limit", declared, got)
		}
	}

	// Through the whole server with the default limit: 413 too.
	z := sdktest.NewZeros(100 << 20)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL, z)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.admin.Token)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("100 MB body over the network: %d %s", resp.StatusCode, body)
		}
	} // else the server closed the connection while the body was still being sent, which is a refusal too
	if got := z.Taken(); got >= 100<<20 {
		t.Errorf("100 MB body over the network was sent whole")
	}
}

func TestMalformedBodyNotEchoed(t *testing.T) {
	e := newEnv(t)
	const marker = "SECRET-PAYLOAD-MARKER"
	for _, body := range []string{
		`{"query": "{me{name}}", "x": "` + marker + strings.Repeat("x", 10000), // truncated JSON
		`{"query": 5, "variables": {"a": "` + marker + `"}}`,                   // wrong type
		`[` + marker + `]`,
	} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.admin.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(got, graph.CodeBadRequest) {
			t.Errorf("%.40s…: %d %s", body, resp.StatusCode, got)
		}
		if strings.Contains(got, marker) || len(got) > 400 {
			t.Errorf("%.40s…: the answer echoes the body: %s", body, got)
		}
	}
}

// wsFrameHeader is a client frame header announcing size bytes, masked
// with a zero key so the payload goes as written.
func wsFrameHeader(opcode byte, fin bool, size uint64) []byte {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	h := []byte{b0, 0x80 | 127}
	h = binary.BigEndian.AppendUint64(h, size)
	return append(h, 0, 0, 0, 0)
}

// expectClose reads until the server closes the connection and returns
// the close code it sent.
func expectClose(t *testing.T, conn *websocket.Conn) int {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("connection not closed with a close frame: %v", err)
		}
	}
}

func TestWebsocketFrameLimits(t *testing.T) {
	e := newEnv(t)
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http")
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}

	// Before connection_init: a frame announcing 100 MB, followed by some
	// of it, is cut off at its header.
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer conn.Close()
	raw := conn.NetConn()
	if _, err := raw.Write(wsFrameHeader(websocket.TextMessage, true, 100<<20)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = raw.Write(make([]byte, 256<<10)) }() // may fail once the server closes
	if c := expectClose(t, conn); c != websocket.CloseMessageTooBig {
		t.Errorf("100 MB connection_init: close code %d, want %d", c, websocket.CloseMessageTooBig)
	}

	// A message of several frames, each small, is counted whole.
	conn2, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer conn2.Close()
	raw2 := conn2.NetConn()
	go func() {
		// Valid JSON as far as it goes, so the server reads on.
		chunk := []byte(`{"type":"connection_init","payload":{"pad":"` + strings.Repeat("a", 32<<10))
		_, _ = raw2.Write(append(wsFrameHeader(websocket.TextMessage, false, uint64(len(chunk))), chunk...))
		chunk = chunk[:32<<10]
		for i := range chunk {
			chunk[i] = 'a'
		}
		for range 4 {
			_, _ = raw2.Write(append(wsFrameHeader(0, false, uint64(len(chunk))), chunk...))
		}
	}()
	if c := expectClose(t, conn2); c != websocket.CloseMessageTooBig {
		t.Errorf("fragmented 160 KiB connection_init: close code %d", c)
	}

	// After connection_init the limit is the message limit: 200 KiB
	// passes the frame guard (and is refused by GraphQL as a bad
	// message, not by size); 2 MB does not.
	conn3 := dialInit(t, e, e.admin.Token)
	raw3 := conn3.NetConn()
	if _, err := raw3.Write(wsFrameHeader(websocket.TextMessage, true, 2<<20)); err != nil {
		t.Fatal(err)
	}
	if c := expectClose(t, conn3); c != websocket.CloseMessageTooBig {
		t.Errorf("2 MB message after init: close code %d", c)
	}

	// A subscription far below the limit still works after init.
	conn4 := dialInit(t, e, e.admin.Token)
	big := `{"id":"1","type":"subscribe","payload":{"query":"subscription{taskEvents{type}}","extensions":{"pad":"` + strings.Repeat("x", 200<<10) + `"}}}`
	if err := conn4.WriteMessage(websocket.TextMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if err := conn4.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatal(err)
	}
	_ = conn4.SetReadDeadline(time.Now().Add(10 * time.Second))
	var msg map[string]any
	if err := conn4.ReadJSON(&msg); err != nil || msg["type"] != "pong" {
		t.Fatalf("after a 200 KiB subscribe: %v %v", msg, err)
	}
}
