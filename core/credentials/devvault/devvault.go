// Package devvault finds a `vault` binary and runs Vault on a free loopback
// port: a throw-away dev server (`vault server -dev`, Start) with a random
// root token for tests, which keeps everything in memory, and a server with
// file storage that keeps its data and unseals itself (StartPersistent) for
// `rpacloud dev`.
package devvault

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotFound means no vault binary could be found.
var ErrNotFound = errors.New("no vault binary found")

// CachedPath is where deploy/vault/build.sh puts the binary it builds.
func CachedPath() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "rpacloud", "bin", "vault")
}

// Find returns the vault binary to use: $RPACLOUD_VAULT_BIN, then the cached
// build, then `vault` on PATH.
func Find() (string, error) {
	if p := os.Getenv("RPACLOUD_VAULT_BIN"); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("RPACLOUD_VAULT_BIN=%s is not an executable file: %w", p, ErrNotFound)
	}
	if p := CachedPath(); p != "" && isExec(p) {
		return p, nil
	}
	if p, err := exec.LookPath("vault"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w (looked at $RPACLOUD_VAULT_BIN, %s and PATH; build one with: bash deploy/vault/build.sh)", ErrNotFound, CachedPath())
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// Server is a running dev server.
type Server struct {
	Addr      string // http://127.0.0.1:PORT
	RootToken string
	UnsealKey string // to unseal it again after a test sealed it

	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu  sync.Mutex
	log strings.Builder // the server's output, for error messages
}

// Options tune Start.
type Options struct {
	// Output receives the server's log lines; nil discards them.
	Output io.Writer
	// StartTimeout bounds the wait for the server to answer; default 60s.
	StartTimeout time.Duration
}

var unsealRE = regexp.MustCompile(`(?m)^Unseal Key: (\S+)\s*$`)

// Start runs `bin server -dev` on a free loopback port with a fresh random
// root token and waits until it answers. Stop it with Stop.
func Start(ctx context.Context, bin string, o Options) (*Server, error) {
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	var lastErr error
	for range 3 { // the free port may be taken between probe and bind
		s, err := start(ctx, bin, o)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func start(ctx context.Context, bin string, o Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("vault dev server: random token: %w", err)
	}
	s := &Server{
		Addr:      fmt.Sprintf("http://127.0.0.1:%d", port),
		RootToken: "hvs-dev-" + hex.EncodeToString(tok),
		done:      make(chan struct{}),
	}
	// Never exec.CommandContext: the server must outlive the start-up
	// context and is stopped by Stop.
	cmd := exec.Command(bin, "server", "-dev",
		"-dev-listen-address=127.0.0.1:"+fmt.Sprint(port),
		"-dev-root-token-id="+s.RootToken,
		"-dev-no-store-token", // do not write ~/.vault-token
		"-log-level=warn")
	// A clean environment: a VAULT_ADDR or VAULT_TOKEN of the caller must
	// not leak into the server, nor the caller's other secrets.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "VAULT_DISABLE_MLOCK=true", "SKIP_SETCAP=1"}
	keyCh, err := s.launch(cmd, o)
	if err != nil {
		return nil, err
	}

	wctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	if err := s.waitReady(wctx); err != nil {
		s.Stop()
		return nil, err
	}
	select {
	case k := <-keyCh:
		s.UnsealKey = k
	case <-time.After(5 * time.Second):
	}
	return s, nil
}

func (s *Server) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(s.log.String())
}

// launch starts cmd with its output captured: kept (bounded) for error
// messages and copied to o.Output, except lines carrying the unseal key or
// the root token. The unseal key a dev server prints goes to the channel.
func (s *Server) launch(cmd *exec.Cmd, o Options) (<-chan string, error) {
	cmd.SysProcAttr = sysProcAttr()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	s.cmd = cmd
	keyCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			if m := unsealRE.FindStringSubmatch(line); m != nil {
				select {
				case keyCh <- m[1]:
				default:
				}
				continue // the unseal key stays out of every log
			}
			s.mu.Lock()
			if s.RootToken != "" && strings.Contains(line, s.RootToken) {
				s.mu.Unlock()
				continue
			}
			if s.log.Len() < 64*1024 {
				s.log.WriteString(line + "\n")
			}
			s.mu.Unlock()
			if o.Output != nil {
				fmt.Fprintln(o.Output, line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		s.err = cmd.Wait()
		_ = pw.Close()
		close(s.done)
	}()
	return keyCh, nil
}

// waitReady polls sys/health until the server is initialised, unsealed and
// active (HTTP 200).
func (s *Server) waitReady(ctx context.Context) error {
	return s.waitHealth(ctx, true)
}

// waitHealth polls sys/health until it answers 200 (ready) or, with ready
// false, answers at all: before a server is initialised and unsealed it
// says 501 or 503. A server that exits meanwhile is errExited.
func (s *Server) waitHealth(ctx context.Context, ready bool) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Addr+"/v1/sys/health", nil)
		resp, err := hc.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if !ready || resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("%w (%v): %s", errExited, s.err, s.output())
		case <-ctx.Done():
			return fmt.Errorf("vault server at %s did not become ready: %w", s.Addr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Done is closed when the server process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop ends the server (SIGTERM, then SIGKILL after 10s) and waits for it.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("vault dev server: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
