package credentials_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/devvault"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

// TestDeploySetupAndPolicies runs the operator's setup script of
// deploy/vault against a real Vault, twice (it must be idempotent), then
// runs the daemon with the AppRole login and policy it made: everything
// rpacloud does works, and nothing outside its prefix does.
func TestDeploySetupAndPolicies(t *testing.T) {
	t.Parallel()
	v := vaulttest.Own(t) // enables auth methods and policies: not on the shared Vault
	bin, err := devvault.Find()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	script, _ := filepath.Abs("../../deploy/vault/setup.sh")
	var hcl string
	for range 2 {
		cmd := exec.Command("bash", script, out)
		cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN="+v.Token, "VAULT_BIN="+bin)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("setup.sh: %v\n%s", err, stderr.String())
		}
		hcl = string(b)
	}
	// The printed block is valid configuration.
	cfg, diags, _ := config.LoadSources(map[string][]byte{"vault.hcl": []byte(hcl)})
	if diags.HasErrors() || cfg.Vault == nil {
		t.Fatalf("setup.sh printed a vault block that does not load: %v\n%s", diags, hcl)
	}
	if cfg.Vault.AuthMethod != "approle" || cfg.Vault.RoleID != "rpacloud-core" {
		t.Fatalf("vault block = %+v", cfg.Vault)
	}
	if st, err := os.Stat(cfg.Vault.SecretIDFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secret ID file: %v %v", st, err)
	}

	ctx := context.Background()
	s, err := credentials.New(credentials.Options{Vault: cfg.Vault, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(rctx) })
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Health(ctx).State != credentials.StateOK {
		if time.Now().After(deadline) {
			t.Fatalf("AppRole login: health = %+v", s.Health(ctx))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := ref(finance, "etax/acme")
	if _, err := s.Put(ctx, r, secret.Secret{Username: "u", Password: "p1"}, "x"); err != nil {
		t.Fatalf("put under the core policy: %v", err)
	}
	if _, err := s.Rotate(ctx, r, secret.Secret{Username: "u", Password: "p2"}, "x"); err != nil {
		t.Fatalf("rotate under the core policy: %v", err)
	}
	if l, err := s.List(ctx, finance); err != nil || len(l) != 1 {
		t.Fatalf("list under the core policy: %v %v", l, err)
	}
	binds := []credentials.Binding{{Name: "etax/acme", Ref: r}}
	g, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 1, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if err != nil {
		t.Fatalf("grant under the core policy: %v", err)
	}
	if got, err := secret.Redeem(ctx, g); err != nil || got["etax/acme"].Password != "p2" {
		t.Fatalf("redeem: %v", err)
	}
	g, err = s.Grant(ctx, credentials.GrantRequest{TaskID: 2, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if err != nil {
		t.Fatal(err)
	}
	s.EndAttempt(ctx, 2, 1) // revoke-accessor is allowed by the policy
	if _, err := secret.Redeem(ctx, g); !errors.Is(err, secret.ErrExpired) {
		t.Fatalf("revocation under the core policy: err = %v", err)
	}
	// A robot with the optional rpacloud-robot policy unwraps its grant
	// and reads nothing else.
	rt, err := v.Client(t).Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"rpacloud-robot"}, NoDefaultPolicy: true, TTL: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	robotC := v.Client(t)
	robotC.SetToken(rt.Auth.ClientToken)
	if _, err := robotC.Logical().Read(s.Layout().DataPath(r)); err == nil {
		t.Error("a robot token read a credential directly")
	}
	g, err = s.Grant(ctx, credentials.GrantRequest{TaskID: 3, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if err != nil {
		t.Fatal(err)
	}
	if sec, err := robotC.Logical().Unwrap(g.Items[0].WrappingToken); err != nil || sec == nil {
		t.Errorf("robot policy cannot unwrap its grant: %v", err)
	}
	if err := s.Delete(ctx, r); err != nil {
		t.Fatalf("delete under the core policy: %v", err)
	}

	// The daemon's token reaches nothing else.
	root := v.Client(t)
	if _, err := root.Logical().Write("secret/data/other/app", map[string]any{"data": map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	login, err := root.Logical().Write("auth/approle/login", map[string]any{"role_id": "rpacloud-core", "secret_id": strings.TrimSpace(readFile(t, cfg.Vault.SecretIDFile))})
	if err != nil {
		t.Fatal(err)
	}
	core := v.Client(t)
	core.SetToken(login.Auth.ClientToken)
	for _, op := range []struct {
		what string
		do   func() error
	}{
		{"read outside the prefix", func() error { _, err := core.Logical().Read("secret/data/other/app"); return err }},
		{"write a policy", func() error { return core.Sys().PutPolicy("evil", `path "*" { capabilities = ["sudo"] }`) }},
		{"create a child token", func() error {
			_, err := core.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"rpacloud-core"}})
			return err
		}},
		{"enable an engine", func() error { return core.Sys().Mount("x", &vault.MountInput{Type: "kv"}) }},
		{"read the role's secret IDs", func() error {
			_, err := core.Logical().Write("auth/approle/role/rpacloud-core/secret-id", nil)
			return err
		}},
	} {
		err := op.do()
		var re *vault.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("core token could %s: err = %v, want 403", op.what, err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
