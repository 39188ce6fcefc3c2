package devvault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// InitFile is the file in a persistent server's directory that holds its
// unseal key and root token.
const InitFile = "init.json"

// initKeys is what StartPersistent keeps in InitFile.
type initKeys struct {
	UnsealKey string `json:"unseal_key"`
	RootToken string `json:"root_token"`
}

// StartPersistent runs a Vault server that keeps its data in dir with
// Vault's file storage, for `rpacloud dev`: credentials stored in it survive
// a restart, where a dev server's memory would lose them while the
// database still binds processes to them. The first start initialises it
// with a single unseal key share and writes the key and the root token to
// dir/init.json (0600); every start unseals it with that key and makes sure
// a KV version 2 engine is mounted at mount. The key sits beside the data it
// protects, so this is for one evaluation machine only; production runs a
// real Vault (deploy/vault). The server listens on a free loopback port
// without TLS. Stop it with Stop; the data stays.
func StartPersistent(ctx context.Context, bin, dir, mount string, o Options) (*Server, error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("vault data directory: %w", err)
	}
	var lastErr error
	for range 3 { // the free port may be taken between probe and bind
		s, err := startPersistent(ctx, bin, dir, mount, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errExited) {
			break
		}
	}
	return nil, lastErr
}

// errExited marks a server that ended during start-up, e.g. because its
// port was taken: worth another try on another port.
var errExited = errors.New("vault server exited at start")

func startPersistent(ctx context.Context, bin, dir, mount string, o Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// HCL strings: %q gives Go escaping, which HCL reads the same way.
	conf := fmt.Sprintf(`# Written by rpacloud dev at every start (the port changes).
storage "file" {
  path = %q
}
listener "tcp" {
  address     = %q
  tls_disable = true
}
api_addr      = %q
disable_mlock = true
ui            = false
`, filepath.Join(dir, "data"), addr, "http://"+addr)
	confPath := filepath.Join(dir, "vault.hcl")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("vault configuration: %w", err)
	}
	s := &Server{Addr: "http://" + addr, done: make(chan struct{})}
	cmd := exec.Command(bin, "server", "-config="+confPath, "-log-level=warn")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "VAULT_DISABLE_MLOCK=true", "SKIP_SETCAP=1"}
	if _, err := s.launch(cmd, o); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if err := s.setUp(wctx, dir, mount); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// setUp initialises (first start), unseals and mounts the KV engine.
func (s *Server) setUp(ctx context.Context, dir, mount string) error {
	if err := s.waitHealth(ctx, false); err != nil {
		return err
	}
	vc, err := s.client()
	if err != nil {
		return err
	}
	keys, err := s.keys(ctx, vc, dir)
	if err != nil {
		return err
	}
	// Under mu: the output reader filters lines by the root token.
	s.mu.Lock()
	s.RootToken, s.UnsealKey = keys.RootToken, keys.UnsealKey
	s.mu.Unlock()
	seal, err := vc.Sys().UnsealWithContext(ctx, keys.UnsealKey)
	if err != nil {
		return fmt.Errorf("unseal the Vault in %s: %w", dir, err)
	}
	if seal.Sealed {
		return fmt.Errorf("the Vault in %s is still sealed after unsealing with the key in %s: the file does not belong to this data; delete %s to start over (its credentials are lost)", dir, filepath.Join(dir, InitFile), dir)
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	vc.SetToken(keys.RootToken)
	mounts, err := vc.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list the Vault's secrets engines: %w", err)
	}
	if _, ok := mounts[strings.Trim(mount, "/")+"/"]; ok {
		return nil
	}
	in := &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}
	if err := vc.Sys().MountWithContext(ctx, strings.Trim(mount, "/"), in); err != nil {
		return fmt.Errorf("mount a KV v2 engine at %s: %w", mount, err)
	}
	return nil
}

// client is a Vault API client for the server, with no token of the
// environment's and no kept-alive connection (set-up makes a handful of
// calls; an idle connection would outlive it).
func (s *Server) client() (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client configuration: %w", cfg.Error)
	}
	cfg.Address = s.Addr
	if tr, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		tr.DisableKeepAlives = true
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", s.Addr, err)
	}
	c.ClearToken()
	return c, nil
}

// keys reads the unseal key and root token, initialising the server on its
// first start. The keys are written before anything else happens, so a
// crash after init loses nothing.
func (s *Server) keys(ctx context.Context, vc *vault.Client, dir string) (initKeys, error) {
	var k initKeys
	path := filepath.Join(dir, InitFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &k); err != nil || k.UnsealKey == "" || k.RootToken == "" {
			return k, fmt.Errorf("%s is damaged (want unseal_key and root_token); delete %s to start over (its credentials are lost)", path, dir)
		}
		return k, nil
	case !errors.Is(err, os.ErrNotExist):
		return k, fmt.Errorf("read %s: %w", path, err)
	}
	initialized, err := vc.Sys().InitStatusWithContext(ctx)
	if err != nil {
		return k, fmt.Errorf("ask the Vault in %s whether it is initialised: %w", dir, err)
	}
	if initialized {
		return k, fmt.Errorf("the Vault in %s is initialised but its keys (%s) are gone: delete %s to start over (its credentials are lost)", dir, path, dir)
	}
	out, err := vc.Sys().InitWithContext(ctx, &vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return k, fmt.Errorf("initialise the Vault in %s: %w", dir, err)
	}
	if len(out.Keys) != 1 || out.RootToken == "" {
		return k, fmt.Errorf("initialise the Vault in %s: the answer has %d unseal keys and no root token", dir, len(out.Keys))
	}
	k = initKeys{UnsealKey: out.Keys[0], RootToken: out.RootToken}
	b, _ = json.Marshal(k)
	// Synced before and after the rename: the Vault is initialised now,
	// and a crash that left an empty file would lose its data for good.
	if err := writeSynced(path, b); err != nil {
		return k, fmt.Errorf("keep the new Vault's keys in %s: %w", path, err)
	}
	return k, nil
}

// writeSynced writes b to path (0600) through a synced temporary file and
// a rename, then syncs the directory.
func writeSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
