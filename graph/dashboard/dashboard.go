// Package dashboard serves the wall-screen page at /. The page holds no
// data of its own: it asks the GraphQL API with the token the user pastes
// (kept in the browser's localStorage) and follows task events live over
// the graphql-transport-ws websocket protocol.
package dashboard

import (
	"embed"
	"net/http"
)

//go:embed index.html
var files embed.FS

// Handler serves the dashboard page.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeFileFS(w, r, files, "index.html")
	})
}
