package credentials_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/metrics"
)

// Every request to Vault is counted: answered (below 500, with the moment
// of the last one) or failed (a 5xx such as sealed, or no answer).
func TestVaultRequestsAreCounted(t *testing.T) {
	var sealed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sealed.Load() {
			http.Error(w, `{"errors":["Vault is sealed"]}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"type":"shamir","initialized":true,"sealed":false,"t":1,"n":1,"progress":0}`))
	}))
	defer srv.Close()
	m := metrics.New()
	s, err := credentials.New(credentials.Options{Vault: &config.Vault{Address: srv.URL}, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Health(context.Background())
	if ok := testutil.ToFloat64(m.VaultRequests.WithLabelValues("ok")); ok != 1 {
		t.Fatalf("requests answered: %v, want 1", ok)
	}
	last := testutil.ToFloat64(m.VaultLastOK)
	if last <= 0 {
		t.Fatalf("last success %v, want the moment of the answer", last)
	}
	sealed.Store(true)
	if h := s.Health(context.Background()); h.State == credentials.StateOK {
		t.Fatalf("health of a sealed Vault: %+v", h)
	}
	if n := testutil.ToFloat64(m.VaultRequests.WithLabelValues("error")); n < 1 {
		t.Fatalf("failed requests: %v, want at least 1", n)
	}
	if got := testutil.ToFloat64(m.VaultLastOK); got != last {
		t.Fatalf("a failed request moved the last success from %v to %v", last, got)
	}
}
