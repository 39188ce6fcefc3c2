package scale

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
)

// TestProviderSecretsResolved: a provider block's Vault references become
// their values only in the configuration handed to the plugin, and a
// failure names the attribute and the reference, never a value.
func TestProviderSecretsResolved(t *testing.T) {
	s := &Providers{}
	cfg := map[string]string{"region": "cn-north-1", "secret_access_key": "vault:kv/rpacloud/aws#secret"}
	if _, err := s.resolveSecrets(context.Background(), "aws", cfg); err == nil || !strings.Contains(err.Error(), "secret_access_key") {
		t.Fatalf("no Vault: %v", err)
	}

	s.opts.Resolve = func(_ context.Context, ref config.VaultRef) (string, error) {
		if ref.Path == "kv/rpacloud/aws" && ref.Field == "secret" {
			return "s3cr3t-value", nil
		}
		return "", errors.New("vault: resolve " + ref.String() + ": not found")
	}
	got, err := s.resolveSecrets(context.Background(), "aws", map[string]string{"region": "cn-north-1", "secret_access_key": "vault:kv/rpacloud/aws#secret"})
	if err != nil || got["secret_access_key"] != "s3cr3t-value" || got["region"] != "cn-north-1" {
		t.Fatalf("resolved %v %v", got, err)
	}
	_, err = s.resolveSecrets(context.Background(), "aws", map[string]string{"access_key_id": "vault:kv/rpacloud/aws#missing"})
	if err == nil || !strings.Contains(err.Error(), `provider "aws": access_key_id`) || !strings.Contains(err.Error(), "kv/rpacloud/aws#missing") {
		t.Fatalf("missing secret: %v", err)
	}
}

// TestProvidersForget: a reload records its new provider blocks before its
// pools are synced, and forgets them when the sync fails; blocks it did
// not add stay.
func TestProvidersForget(t *testing.T) {
	old := &config.Config{Providers: []config.Provider{{Name: "a", Plugin: "local"}}}
	s := NewProviders(nil, old, ProvidersOptions{})
	next := &config.Config{Providers: []config.Provider{{Name: "a", Plugin: "local"}, {Name: "b", Plugin: "local"}}}
	added := s.Update(next)
	if len(added) != 1 || added[0] != "b" {
		t.Fatalf("added %v, want [b]", added)
	}
	if _, ok := s.Statuses()["b"]; !ok {
		t.Fatal("b not served after Update")
	}
	s.Forget(added)
	st := s.Statuses()
	if _, ok := st["b"]; ok {
		t.Error("b still served after Forget")
	}
	if _, ok := st["a"]; !ok {
		t.Error("Forget dropped a block it was not given")
	}
}
