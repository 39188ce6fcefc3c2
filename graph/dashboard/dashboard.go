// Package dashboard serves the wall-screen page at / and its scripts under
// /assets/. The page holds no data of its own: it asks the GraphQL API with
// a token kept in the browser's localStorage (given once as /#token=...,
// since a wall screen has no keyboard) and follows the fleet live over the
// graphql-transport-ws protocol. URL parameters choose what one display of
// a wall shows (view=overview|anomalies|vendors|pools, customer=NAME), when
// it counts as stale (stale=SECONDS), a tone for new critical anomalies
// (sound=1) and the acknowledge/resolve buttons (operator=1); see
// assets/dashboard.js and README "Monitoring".
//
// The charting library (ECharts) and the websocket client (graphql-ws) are
// their own minified builds from the npm registry, committed in assets/
// (see assets/VENDORED.md) and embedded into the binary: running the daemon
// needs no front-end build step.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html assets/*.js assets/*.css
var files embed.FS

// Handler serves the dashboard page and its assets.
func Handler() http.Handler {
	assets, _ := fs.Sub(files, "assets")
	static := http.StripPrefix("/assets/", http.FileServerFS(assets))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/index.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			http.ServeFileFS(w, r, files, "index.html")
		case len(r.URL.Path) > len("/assets/") && r.URL.Path[:len("/assets/")] == "/assets/":
			static.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
