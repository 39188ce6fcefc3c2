// Package vaulttest gives tests a real HashiCorp Vault: the one
// .ci/services.sh started (RPACLOUD_TEST_VAULT_ADDR and
// RPACLOUD_TEST_VAULT_TOKEN), or else a dev server of its own when a vault
// binary can be found (see devvault.Find). Without either the test is
// skipped, unless RPACLOUD_REQUIRE_VAULT=1, which makes it fail: CI must
// never pass by skipping the credential tests.
package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"sync"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/credentials/devvault"
)

// Vault is a reachable Vault with a root token.
type Vault struct {
	Addr  string
	Token string
	// Server is set when the Vault is a dev server this package started.
	Server *devvault.Server
}

var (
	sharedOnce sync.Once
	shared     *Vault
	sharedErr  error
)

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("RPACLOUD_REQUIRE_VAULT") == "1" {
		t.Fatalf("RPACLOUD_REQUIRE_VAULT=1 but %s", why)
	}
	t.Skipf("no Vault: %s (run the tests through bash .ci/services.sh, or build one with bash deploy/vault/build.sh)", why)
}

// Shared returns the Vault every test of the process may use. Tests keep
// apart by working under their own mount (NewMount); a test that seals or
// stops Vault must use Own instead.
func Shared(t testing.TB) *Vault {
	t.Helper()
	if addr, tok := os.Getenv("RPACLOUD_TEST_VAULT_ADDR"), os.Getenv("RPACLOUD_TEST_VAULT_TOKEN"); addr != "" && tok != "" {
		return &Vault{Addr: addr, Token: tok}
	}
	sharedOnce.Do(func() {
		bin, err := devvault.Find()
		if err != nil {
			sharedErr = err
			return
		}
		// Shared by the package's tests and stopped with the process:
		// the server dies with its parent (Pdeathsig).
		s, err := devvault.Start(context.Background(), bin, devvault.Options{})
		if err != nil {
			sharedErr = err
			return
		}
		shared = &Vault{Addr: s.Addr, Token: s.RootToken, Server: s}
	})
	if sharedErr != nil {
		missing(t, sharedErr.Error())
	}
	return shared
}

// Own starts a dev server for this test alone, stopped at its end.
func Own(t testing.TB) *Vault {
	t.Helper()
	bin, err := devvault.Find()
	if err != nil {
		missing(t, err.Error())
	}
	s, err := devvault.Start(context.Background(), bin, devvault.Options{})
	if err != nil {
		t.Fatalf("start a Vault dev server: %v", err)
	}
	t.Cleanup(s.Stop)
	return &Vault{Addr: s.Addr, Token: s.RootToken, Server: s}
}

// Client returns a root client.
func (v *Vault) Client(t testing.TB) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	// No idle connections left behind for goroutine-leak checks.
	if tr, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		tr.DisableKeepAlives = true
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatalf("vault client: %v", err)
	}
	c.SetToken(v.Token)
	return c
}

// NewMount enables a fresh KV v2 engine under a random path, removed when
// the test ends, and returns its path.
func (v *Vault) NewMount(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	mount := "t-" + hex.EncodeToString(b)
	c := v.Client(t)
	if err := c.Sys().Mount(mount, &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("enable kv-v2 at %s: %v", mount, err)
	}
	t.Cleanup(func() { _ = c.Sys().Unmount(mount) })
	return mount
}

// WriteTokenFile writes tok to a file only the test can read and returns
// its path, for a vault block's token_file.
func WriteTokenFile(t testing.TB, tok string) string {
	t.Helper()
	p := t.TempDir() + "/vault-token"
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
