package daemon

import (
	"net/http"

	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/graph"
)

// delivery wires the lifecycle, remote access, run schedule and documents
// (core/delivery) into the API and serves their download links,
// which browsers follow without an Authorization header: the ticket in
// the path is the credential.
func (d *Daemon) delivery(mux *http.ServeMux, res *graph.Resolver) {
	svc := &delivery.Service{Client: d.db.Client, Config: d.live(), PublicURL: d.publicURL}
	res.Delivery = svc
	mux.Handle("GET "+delivery.DownloadPath+"{ticket}", svc.DownloadHandler(d.log))
}
