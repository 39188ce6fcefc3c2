package sdktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The daemon harness runs a real `rpacloud dev` for end-to-end plugin
// tests, as a separate process built from this tree: plugin tests may not
// import the daemon, and a process is what an operator runs.

// BuildRpacloud builds cmd/rpacloud of this tree into dir and returns the
// binary's path. The Go build cache makes every build after the first a
// link.
func BuildRpacloud(dir string) (string, error) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..", "..")
	bin := filepath.Join(dir, "rpacloud")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/rpacloud")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/rpacloud: %w\n%s", err, out)
	}
	return bin, nil
}

// RpacloudBinary builds cmd/rpacloud into the test's temporary directory.
func RpacloudBinary(t testing.TB) string {
	t.Helper()
	bin, err := BuildRpacloud(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Daemon is a running `rpacloud dev`.
type Daemon struct {
	Base    string // http://127.0.0.1:PORT
	Token   string // the admin token
	logPath string
	stop    func()
}

// StartDaemon writes hcl as the configuration and starts `rpacloud dev`
// with env added to the environment; it returns once the daemon serves and
// its admin token exists. The daemon is stopped (SIGINT) when the test
// ends, and its log is printed if the test failed.
func StartDaemon(t testing.TB, hcl string, env ...string) *Daemon {
	t.Helper()
	bin := RpacloudBinary(t)
	cfgDir := filepath.Join(t.TempDir(), "config")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return StartDaemonAt(t, bin, cfgDir, env...)
}

// StartDaemonAt is StartDaemon with a binary the test built (BuildRpacloud)
// and a configuration directory it wrote.
func StartDaemonAt(t testing.TB, bin, cfgDir string, env ...string) *Daemon {
	t.Helper()
	tmp := t.TempDir()
	addr := FreeAddr(t)
	d := &Daemon{Base: "http://" + addr, logPath: filepath.Join(tmp, "daemon.log")}
	logf, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(tmp, "data")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "dev", "--config", cfgDir, "--data-dir", dataDir, "--listen", addr)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		t.Fatal(err)
	}
	stopped := false
	d.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			_ = cmd.Wait()
			logf.Close()
		}
	}
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			b := []byte(d.Log())
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("daemon log (tail):\n%s", b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
		// Once the daemon has bound its address a request waits until it
		// serves, which may be before the token exists: every answer's
		// body is closed, or its connection stays behind (goleak).
		resp, herr := http.Get(d.Base + "/healthz")
		if herr == nil {
			resp.Body.Close()
		}
		if err == nil && herr == nil {
			d.Token = strings.TrimSpace(string(b))
			return d
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon did not come up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the daemon and waits for it; later calls do nothing.
func (d *Daemon) Stop() { d.stop() }

// Log is what the daemon has written so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// Do sends a GraphQL operation as the admin and decodes its data into out
// (unless nil). GraphQL errors come back as one error.
func (d *Daemon) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("graphql: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("graphql: read: %w", err)
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("graphql: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	if len(env.Errors) > 0 {
		msgs := make([]string, len(env.Errors))
		for i, e := range env.Errors {
			msgs[i] = e.Message
		}
		return fmt.Errorf("graphql: %s", strings.Join(msgs, "; "))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("graphql: decode data: %w", err)
	}
	return nil
}

// Vault is a reachable HashiCorp Vault with a root token.
type Vault struct {
	Addr, Token string
}

var (
	vaultOnce sync.Once
	shared    *Vault
	vaultErr  error
)

// SharedVault returns the Vault .ci/services.sh started
// (RPACLOUD_TEST_VAULT_ADDR and RPACLOUD_TEST_VAULT_TOKEN), or else a dev
// server of the cached binary ~/.cache/rpacloud/bin/vault (make vault)
// started once for the test process and ending with it. Without either the
// test is skipped, unless RPACLOUD_REQUIRE_VAULT=1.
func SharedVault(t testing.TB) *Vault {
	t.Helper()
	if addr, tok := os.Getenv("RPACLOUD_TEST_VAULT_ADDR"), os.Getenv("RPACLOUD_TEST_VAULT_TOKEN"); addr != "" && tok != "" {
		return &Vault{Addr: addr, Token: tok}
	}
	vaultOnce.Do(func() { shared, vaultErr = startDevVault() })
	if vaultErr != nil {
		if os.Getenv("RPACLOUD_REQUIRE_VAULT") == "1" {
			t.Fatalf("RPACLOUD_REQUIRE_VAULT=1 but %v", vaultErr)
		}
		t.Skipf("no Vault: %v (run the tests through bash .ci/services.sh, or make vault)", vaultErr)
	}
	return shared
}

func startDevVault() (*Vault, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, fmt.Errorf("home directory: %w", err)
	}
	bin := filepath.Join(home, ".cache", "rpacloud", "bin", "vault")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no vault binary: %w", err)
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	v := &Vault{Token: "hvs-dev-" + hex.EncodeToString(b)}
	for range 3 { // the free port may be taken before Vault binds it
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		v.Addr = "http://" + addr
		// Not tied to a test: the server serves the whole test process
		// and dies with it (setPdeathsig). Nobody waits for it, so no
		// goroutine outlives the tests (goleak).
		cmd := exec.Command(bin, "server", "-dev", "-dev-listen-address="+addr, "-dev-root-token-id="+v.Token, "-dev-no-store-token")
		setPdeathsig(cmd)
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start vault: %w", err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			resp, err := http.Get(v.Addr + "/v1/sys/health")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return v, nil
				}
			}
		}
		_ = cmd.Process.Kill()
	}
	return nil, fmt.Errorf("vault dev server did not become ready")
}

// PutSecret writes data at path of the KV v2 mount "secret".
func (v *Vault) PutSecret(t testing.TB, path string, data map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"data": data})
	req, err := http.NewRequest(http.MethodPost, v.Addr+"/v1/secret/data/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", v.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("vault: put secret/%s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("vault: put secret/%s: HTTP %d: %s", path, resp.StatusCode, b)
	}
}
