package graph_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/graph"
)

const allowedOrigin = "https://ops.example.com"

// A browser's preflight from an allowed origin is answered without a
// token; from another origin it gets no CORS headers (the browser then
// refuses the call); actual requests carry Access-Control-Allow-Origin
// only for the allowed origin.
func TestCORS(t *testing.T) {
	e := newEnvWith(t, graph.HandlerOptions{CORSOrigins: []string{allowedOrigin}})
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.srv.URL, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := preflight(allowedOrigin)
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != allowedOrigin ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp = preflight("https://evil.example.com")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("foreign preflight allowed: %d %v", resp.StatusCode, resp.Header)
	}

	post := func(origin, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL, strings.NewReader(`{"query":"{me{name}}"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(allowedOrigin, e.view.Token); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != allowedOrigin {
		t.Errorf("allowed request: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := post("https://evil.example.com", e.view.Token); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign request got CORS headers: %v", resp.Header)
	}
	// CORS lets a page call; it does not stand in for a token.
	if resp := post(allowedOrigin, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("allowed origin without a token: %d", resp.StatusCode)
	}
}

// The websocket upgrade checks Origin against the same list: the
// daemon's own origin, an allowed one and none (not a browser) pass; any
// other is refused before connection_init.
func TestWebsocketOrigin(t *testing.T) {
	e := newEnvWith(t, graph.HandlerOptions{CORSOrigins: []string{allowedOrigin}})
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http")
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	for origin, ok := range map[string]bool{
		"":                            true,
		allowedOrigin:                 true,
		"HTTPS://OPS.EXAMPLE.COM":     true,
		e.srv.URL:                     true,
		"https://evil.example.com":    false,
		"https://ops.example.com:444": false,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		conn, resp, err := d.Dial(url, h)
		if resp != nil {
			resp.Body.Close()
		}
		if ok != (err == nil) {
			t.Errorf("origin %q: %v (status %v), want allowed=%v", origin, err, resp != nil && resp.StatusCode == 403, ok)
		}
		if conn != nil {
			conn.Close()
		}
	}
}
