package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/devvault"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/graph"
)

// rpacloud dev says which Vault it uses: the configuration's, VAULT_ADDR's,
// a dev server it started, or none (credential features off).
func TestDevVault(t *testing.T) {
	ctx := context.Background()
	var out strings.Builder
	realBin, findErr := devvault.Find() // before the environment is changed below

	cfg := &config.Config{Vault: &config.Vault{Address: "https://vault.example:8200"}}
	stop, err := devVault(ctx, cfg, t.TempDir(), &out)
	stop()
	if err != nil || !strings.Contains(out.String(), "https://vault.example:8200 from the configuration") {
		t.Errorf("vault block: %v, %q", err, out.String())
	}

	out.Reset()
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:8200")
	t.Setenv("VAULT_TOKEN", "tok-from-env")
	dir := t.TempDir()
	cfg = &config.Config{}
	stop, err = devVault(ctx, cfg, dir, &out)
	stop()
	if err != nil || cfg.Vault == nil || cfg.Vault.Address != "http://127.0.0.1:8200" || !strings.Contains(out.String(), "using VAULT_ADDR=http://127.0.0.1:8200") {
		t.Fatalf("VAULT_ADDR: %v, %+v, %q", err, cfg.Vault, out.String())
	}
	if b, _ := os.ReadFile(cfg.Vault.TokenFile); strings.TrimSpace(string(b)) != "tok-from-env" || os.Getenv("VAULT_TOKEN") != "" {
		t.Errorf("the token must move from the environment (robots inherit it) to the token file")
	}
	if strings.Contains(out.String(), "tok-from-env") {
		t.Error("the token was printed")
	}

	out.Reset()
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("RPACLOUD_VAULT_BIN", filepath.Join(t.TempDir(), "no-vault"))
	cfg = &config.Config{}
	stop, err = devVault(ctx, cfg, t.TempDir(), &out)
	stop()
	if err != nil || cfg.Vault != nil || !strings.Contains(out.String(), "credential features are OFF") {
		t.Errorf("no vault: %v, %+v, %q", err, cfg.Vault, out.String())
	}

	if findErr != nil {
		if os.Getenv("RPACLOUD_REQUIRE_VAULT") == "1" {
			t.Fatal(findErr)
		}
		t.Skip(findErr)
	}
	out.Reset()
	t.Setenv("RPACLOUD_VAULT_BIN", realBin)
	cfg = &config.Config{}
	dir = t.TempDir()
	stop, err = devVault(ctx, cfg, dir, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vault == nil || !strings.Contains(out.String(), "started a Vault server at "+cfg.Vault.Address) {
		stop()
		t.Fatalf("dev server: %+v, %q", cfg.Vault, out.String())
	}
	token := func() string {
		b, err := os.ReadFile(cfg.Vault.TokenFile)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if strings.Contains(out.String(), token()) {
		t.Error("the root token was printed")
	}
	// A credential written in one session is there in the next: the
	// server keeps its data in the data directory and unseals itself.
	kv := func(method, addr, tok, body string) (int, string) {
		req, _ := http.NewRequest(method, addr+"/v1/secret/data/rpacloud/dev-test", strings.NewReader(body))
		req.Header.Set("X-Vault-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := kv(http.MethodPost, cfg.Vault.Address, token(), `{"data":{"password":"kept-across-restarts"}}`); code != http.StatusOK {
		stop()
		t.Fatalf("write a secret: HTTP %d %s", code, body)
	}
	first := cfg.Vault.Address
	http.DefaultClient.CloseIdleConnections()
	stop()
	if _, err := os.Stat(filepath.Join(dir, "vault.token")); !os.IsNotExist(err) {
		t.Errorf("the Vault server's root token file outlived it")
	}
	if _, err := http.Get(first + "/v1/sys/health"); err == nil {
		t.Errorf("the Vault server still answers after stop")
	}
	http.DefaultClient.CloseIdleConnections()

	out.Reset()
	cfg = &config.Config{}
	stop, err = devVault(ctx, cfg, dir, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	defer http.DefaultClient.CloseIdleConnections()
	if code, body := kv(http.MethodGet, cfg.Vault.Address, token(), ""); code != http.StatusOK || !strings.Contains(body, "kept-across-restarts") {
		t.Fatalf("after a restart the secret is gone: HTTP %d", code)
	}
	if st, err := os.Stat(filepath.Join(dir, "vault", devvault.InitFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("init file: %v %v", st, err)
	}
}

// The credential commands against a real daemon API and a real Vault: the
// password goes in through stdin and never comes out.
func TestCredentialCommands(t *testing.T) {
	v := vaulttest.Own(t) // stopped with the test: this package checks for leaked goroutines
	ctx := context.Background()
	db := storetest.SQLite(t)
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	fin := db.Customer.Create().SetName("acme-finance").SaveX(sys)
	pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(sys)
	db.Process.Create().SetName("vat").SetPoolID(pl.ID).SetOwnerID(fin.ID).SaveX(sys)
	svc, err := credentials.New(credentials.Options{
		Vault:  &config.Vault{Address: v.Addr, AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, v.Token), Mount: v.NewMount(t), Prefix: "rpacloud"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	bus := events.New()
	res := &graph.Resolver{Client: db.Client, Queue: dispatch.New(db.Client, dispatch.Options{Bus: bus}), Bus: bus,
		Vault: svc, CredentialBindings: credentials.NewBindings(db.Client, nil)}
	srv := httptest.NewServer(auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{})))
	defer srv.Close()
	tok, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: "fin-op", Role: viewer.Operator, CustomerID: &fin.ID})
	if err != nil {
		t.Fatal(err)
	}
	const pw = "cli-secret-Zq81"
	cli := func(stdin string, args ...string) (int, string) {
		var out, errb strings.Builder
		args = append(args, "--server", srv.URL, "--token", tok)
		code := execute(ctx, append([]string{"credential"}, args...), strings.NewReader(stdin), &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := cli(pw+"\n", "put", "--name", "etax/acme", "--username", "acme-001", "--password-stdin", "--process", "vat"); code != 0 ||
		!strings.Contains(out, "acme-finance/etax/acme version 1") || !strings.Contains(out, "processes: vat") {
		t.Fatalf("put: %d %s", code, out)
	}
	secretFile := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(secretFile, []byte(`{"username":"acme-001","password":"`+pw+`2","fields":{"pin":"9"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := cli("", "rotate", "--name", "etax/acme", "--from-file", secretFile); code != 0 || !strings.Contains(out, "version 2") {
		t.Fatalf("rotate: %d %s", code, out)
	}
	code, out := cli("", "list")
	if code != 0 || !strings.Contains(out, "etax/acme") || !strings.Contains(out, "password,pin,username") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out := cli("", "put", "--name", "etax/none", "--password-stdin"); code == 0 || !strings.Contains(out, "no password") {
		t.Errorf("put without a password on stdin: %d %s", code, out)
	}
	if code, out := cli("", "delete", "--name", "etax/acme"); code != 0 {
		t.Fatalf("delete: %d %s", code, out)
	}
	if strings.Contains(out, pw) {
		t.Fatal("a command printed the password")
	}
	// Every write is in the audit trail, the password in none of it.
	rows := db.AuditEntry.Query().AllX(sys)
	if len(rows) != 3 {
		t.Fatalf("%d audit entries, want put, rotate and delete (the put without a password never reached the API)", len(rows))
	}
	for _, r := range rows {
		if strings.Contains(r.String(), pw) {
			t.Fatalf("the password is in the audit trail: %v", r)
		}
	}
}
