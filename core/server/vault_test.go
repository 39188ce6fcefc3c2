package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/store/storetest"
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
			d := &Daemon{opts: Options{Config: cfg}, log: slog.New(slog.DiscardHandler), db: storetest.SQLite(t), started: time.Now(),
				providers: &providerSet{}}
			if err := d.openVault(); err != nil {
				t.Fatal(err)
			}
			if d.vault.svc != nil {
				_ = d.vault.svc.Login(context.Background())
				defer d.vault.svc.Close()
			}
			rec := httptest.NewRecorder()
			d.healthz(rec, httptest.NewRequest("GET", "/healthz", nil))
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
