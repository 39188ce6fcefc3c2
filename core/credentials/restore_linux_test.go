//go:build linux

package credentials_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/devvault"
	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
)

// raftVault is a real (not dev) Vault server on integrated storage, as in
// production, in a temporary directory on loopback.
type raftVault struct {
	addr string
	bin  string
	cmd  *exec.Cmd
	log  string
}

func loopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRaftVault(t *testing.T, bin string) *raftVault {
	t.Helper()
	dir := t.TempDir()
	port, cport := loopbackPort(t), loopbackPort(t)
	cfg := fmt.Sprintf(`storage "raft" {
  path    = %q
  node_id = "n1"
}
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr      = "http://127.0.0.1:%d"
cluster_addr  = "http://127.0.0.1:%d"
disable_mlock = true
`, filepath.Join(dir, "raft"), port, cport, port, cport)
	if err := os.Mkdir(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vault.hcl"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	v := &raftVault{addr: fmt.Sprintf("http://127.0.0.1:%d", port), bin: bin, log: filepath.Join(dir, "vault.log")}
	logf, err := os.Create(v.log)
	if err != nil {
		t.Fatal(err)
	}
	v.cmd = exec.Command(bin, "server", "-config="+filepath.Join(dir, "vault.hcl"), "-log-level=warn")
	v.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "SKIP_SETCAP=1"}
	v.cmd.Stdout, v.cmd.Stderr = logf, logf
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = v.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = v.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = v.cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	v.waitHealth(t, func(code int) bool { return code != 0 })
	return v
}

// waitHealth polls sys/health until ok accepts its status code (0: no
// answer): 501 not initialised, 503 sealed, 200 active.
func (v *raftVault) waitHealth(t *testing.T, ok func(code int) bool) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(30 * time.Second)
	code := 0
	for time.Now().Before(deadline) {
		code = 0
		if res, err := hc.Get(v.addr + "/v1/sys/health"); err == nil {
			code = res.StatusCode
			res.Body.Close()
		}
		if ok(code) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(v.log)
	t.Fatalf("vault at %s: health %d after 30s\n%s", v.addr, code, out)
}

func (v *raftVault) client(t *testing.T, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = v.addr
	if tr, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		tr.DisableKeepAlives = true
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// initUnseal initialises the server with one key share and unseals it.
func (v *raftVault) initUnseal(t *testing.T) (key, root string) {
	t.Helper()
	res, err := v.client(t, "").Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	v.unseal(t, res.Keys[0])
	return res.Keys[0], res.RootToken
}

func (v *raftVault) unseal(t *testing.T, key string) {
	t.Helper()
	st, err := v.client(t, "").Sys().Unseal(key)
	if err != nil || st.Sealed {
		t.Fatalf("unseal: %v %+v", err, st)
	}
	v.waitHealth(t, func(code int) bool { return code == http.StatusOK })
}

// vaultCLI runs the vault command against v as an operator would.
func (v *raftVault) vaultCLI(t *testing.T, token string, args ...string) {
	t.Helper()
	cmd := exec.Command(v.bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "VAULT_ADDR=" + v.addr, "VAULT_TOKEN=" + token}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The Vault backup and restore the README documents: a raft snapshot of a
// production-style Vault holding a credential stored by core/credentials,
// restored into a fresh Vault with -force, which then unseals with the
// original unseal key (not its own) and serves the credential to
// core/credentials with the original token.
func TestVaultRaftSnapshotRestore(t *testing.T) {
	bin, err := devvault.Find()
	if err != nil {
		if os.Getenv("RPACLOUD_REQUIRE_VAULT") == "1" {
			t.Fatalf("RPACLOUD_REQUIRE_VAULT=1 but %v", err)
		}
		t.Skip(err)
	}
	ctx := context.Background()
	a := startRaftVault(t, bin)
	keyA, rootA := a.initUnseal(t)
	if err := a.client(t, rootA).Sys().Mount(config.DefaultVaultMount, &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("enable kv-v2: %v", err)
	}
	service := func(v *raftVault, token string) *credentials.Service {
		s, err := credentials.New(credentials.Options{
			Vault:  &config.Vault{Address: v.addr, AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, token)},
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Login(ctx); err != nil {
			t.Fatalf("login to %s: %v", v.addr, err)
		}
		t.Cleanup(s.Close)
		return s
	}
	sa := service(a, rootA)
	cred := ref(finance, "etax/acme")
	if _, err := sa.Put(ctx, cred, secret.Secret{Username: "acme-001", Password: "pw-before-the-backup"}, "operator:alice"); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "vault.snap")
	a.vaultCLI(t, rootA, "operator", "raft", "snapshot", "save", snap)

	// A new Vault, as on a new host after losing the old one.
	b := startRaftVault(t, bin)
	keyB, rootB := b.initUnseal(t)
	b.vaultCLI(t, rootB, "operator", "raft", "snapshot", "restore", "-force", snap)
	// From now on b is a's data under a's keys: seal it (with a's token),
	// and only a's unseal key opens it.
	b.waitHealth(t, func(code int) bool { return code == http.StatusOK || code == http.StatusServiceUnavailable })
	if st, err := b.client(t, "").Sys().SealStatus(); err == nil && !st.Sealed {
		if err := b.client(t, rootA).Sys().Seal(); err != nil {
			t.Fatalf("seal the restored Vault with the original root token: %v", err)
		}
	}
	if st, err := b.client(t, "").Sys().Unseal(keyB); err == nil && !st.Sealed {
		t.Fatal("the restored Vault unsealed with its own, pre-restore key")
	}
	b.client(t, "").Sys().ResetUnsealProcess()
	b.unseal(t, keyA)

	sb := service(b, rootA)
	r := cred
	m, err := sb.Meta(ctx, r)
	if err != nil || m.UpdatedBy != "operator:alice" || m.Version != 1 {
		t.Fatalf("restored credential metadata: %+v %v", m, err)
	}
	vr, err := config.ParseVaultRef("vault:" + config.DefaultVaultMount + "/" + config.DefaultVaultPrefix + "/" + finance + "/etax/acme#password")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sb.Resolve(ctx, vr); err != nil || got != "pw-before-the-backup" {
		t.Fatalf("restored credential: %v (the value is not shown)", err)
	}
}
