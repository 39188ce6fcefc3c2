package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/scale"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
)

// /healthz reports Vault's state; a Vault that is down degrades the daemon
// but does not take it down.
func TestHealthzReportsVault(t *testing.T) {
	v := vaulttest.Shared(t)
	for _, c := range []struct {
		name   string
		vault  *config.Vault
		state  credentials.State
		status string
	}{
		{"off", nil, credentials.StateOff, "ok"},
		{"ok", &config.Vault{Address: v.Addr, AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, v.Token)}, credentials.StateOK, "ok"},
		{"unreachable", &config.Vault{Address: "http://127.0.0.1:1", AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, "x")}, credentials.StateUnreachable, "degraded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &config.Config{Vault: c.vault}
			db := storetest.SQLite(t)
			d := &Daemon{opts: Options{Config: cfg}, log: slog.New(slog.DiscardHandler), db: db, started: time.Now(),
				providers: &scale.Providers{}, tokens: auth.NewCache(db.Client, auth.Options{})}
			if err := d.openVault(); err != nil {
				t.Fatal(err)
			}
			if d.vault.svc != nil {
				_ = d.vault.svc.Login(context.Background())
				defer d.vault.svc.Close()
			}
			// Without a token only the status is public.
			rec := httptest.NewRecorder()
			d.healthz(rec, httptest.NewRequest("GET", "/healthz", nil))
			if body := rec.Body.String(); rec.Code != 200 || strings.Contains(body, "vault") || strings.Contains(body, "127.0.0.1") {
				t.Errorf("anonymous healthz = %d %s; want the status alone", rec.Code, body)
			}
			secret, err := auth.Issue(context.Background(), d.db.Client, auth.IssueRequest{Name: "ops", Role: viewer.Admin})
			if err != nil {
				t.Fatal(err)
			}
			rec = httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/healthz", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			d.healthz(rec, req)
			var h struct {
				Status string             `json:"status"`
				Vault  credentials.Health `json:"vault"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
				t.Fatal(err)
			}
			if rec.Code != 200 || h.Status != c.status || h.Vault.State != c.state {
				t.Errorf("healthz = %d %s", rec.Code, rec.Body.String())
			}
		})
	}
}
