// Package credentials keeps the credentials robots log in with in HashiCorp
// Vault (KV v2), through github.com/hashicorp/vault/api, and delivers them
// to robots at run time.
//
//   - The daemon authenticates with AppRole (or a token, for development),
//     and keeps its token renewed, logging in again when it cannot.
//   - Onboarding stores, rotates, lists and deletes credentials under
//     MOUNT/PREFIX/CUSTOMER/NAME; the API only ever sees metadata.
//   - Delivery: when a robot claims a task whose process binds credentials,
//     the daemon asks Vault to read each one into a response-wrapped,
//     single-use token whose TTL ends at the attempt's deadline. The daemon
//     never sees the values; the robot unwraps them straight from Vault
//     into memory (secret.Redeem, in core/credentials/secret: the part
//     robots link, with no storage or Vault client library in it). When
//     the attempt ends, unused wrapping tokens are revoked.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials/layout"
	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/metrics"
	"github.com/rpacloud/rpacloud/core/retry"
)

// Options configure a Service.
type Options struct {
	Vault  *config.Vault
	Logger *slog.Logger
	// Timeout bounds one request to Vault; default 10s.
	Timeout time.Duration
	// RobotAddress is the Vault address handed to robots in grants;
	// default Vault.Address.
	RobotAddress string
	// Metrics counts the requests sent to Vault and when Vault last
	// answered; nil counts nothing.
	Metrics *metrics.Metrics
}

// State is what the daemon knows about Vault.
type State string

// States reported by Health.
const (
	StateOK              State = "ok"
	StateSealed          State = "sealed"
	StateUnreachable     State = "unreachable"
	StateUnauthenticated State = "unauthenticated"
	StateOff             State = "off"
)

// Health is Vault's state as /healthz reports it.
type Health struct {
	State   State  `json:"state"`
	Address string `json:"address,omitempty"`
	Auth    string `json:"auth,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Service is the daemon's connection to Vault.
type Service struct {
	log     *slog.Logger
	cfg     config.Vault
	lay     layout.Layout
	client  *vault.Client
	robot   string
	timeout time.Duration

	mu       sync.Mutex
	authErr  error // last login or renewal failure; nil when authenticated
	loggedIn bool

	grants *tracker
}

// New checks the configuration and prepares a client; it does not contact
// Vault (Run logs in and keeps the token alive), so a daemon starts and
// serves even while Vault is down.
func New(o Options) (*Service, error) {
	if o.Vault == nil {
		return nil, secret.ErrOff
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	cfg := *o.Vault
	if cfg.Mount == "" {
		cfg.Mount = config.DefaultVaultMount
	}
	if cfg.Prefix == "" {
		cfg.Prefix = config.DefaultVaultPrefix
	}
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = config.DefaultVaultAuth
	}
	lay := layout.Layout{Mount: cfg.Mount, Prefix: cfg.Prefix}
	if err := lay.Check(); err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	vc := vault.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault: client configuration: %w", vc.Error)
	}
	vc.Address = cfg.Address
	vc.Timeout = o.Timeout
	vc.MaxRetries = 1
	vc.CheckRetry = countingRetry(vc.CheckRetry, o.Metrics)
	client, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault: client for %s: %w", cfg.Address, err)
	}
	// The token comes from the configured source only, never from a
	// VAULT_TOKEN the client picked up by itself for AppRole setups.
	client.ClearToken()
	robot := o.RobotAddress
	if robot == "" {
		robot = cfg.Address
	}
	s := &Service{log: o.Logger, cfg: cfg, lay: lay, client: client, robot: robot, timeout: o.Timeout,
		authErr: errors.New("not logged in yet")}
	s.grants = newTracker(s)
	return s, nil
}

// Close drops the client's idle connections.
func (s *Service) Close() {
	if s != nil {
		s.client.CloneConfig().HttpClient.CloseIdleConnections()
	}
}

// Layout returns where credentials live.
func (s *Service) Layout() layout.Layout { return s.lay }

// Address is Vault's address.
func (s *Service) Address() string { return s.cfg.Address }

// Login authenticates once. Run does it (and keeps doing it); tests and
// start-up code call it to fail fast.
func (s *Service) Login(ctx context.Context) error {
	_, err := s.login(ctx)
	return err
}

// login authenticates and returns the secret to keep renewed (nil when the
// token cannot be renewed, such as a root token).
func (s *Service) login(ctx context.Context) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var sec *vault.Secret
	var err error
	switch s.cfg.AuthMethod {
	case "approle":
		sec, err = s.loginAppRole(ctx)
	default:
		sec, err = s.loginToken(ctx)
	}
	s.mu.Lock()
	s.authErr, s.loggedIn = err, err == nil
	s.mu.Unlock()
	return sec, err
}

func readSecretFile(what, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("vault: read %s: %w", what, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("vault: %s %s is empty", what, path)
	}
	return v, nil
}

func (s *Service) loginAppRole(ctx context.Context) (*vault.Secret, error) {
	if s.cfg.RoleID == "" || s.cfg.SecretIDFile == "" {
		return nil, errors.New("vault: approle needs role_id and secret_id_file")
	}
	sid, err := readSecretFile("secret_id_file", s.cfg.SecretIDFile)
	if err != nil {
		return nil, err
	}
	// A fresh client without a token: the login endpoint is unauthenticated
	// and the old token may be the expired one.
	c, err := s.client.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault: approle login: %w", err)
	}
	c.ClearToken()
	sec, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": s.cfg.RoleID, "secret_id": sid})
	if err != nil {
		detail, kind := classify(err)
		return nil, fmt.Errorf("vault: approle login as role %q: %w%s", s.cfg.RoleID, kind, paren(detail))
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, errors.New("vault: approle login returned no token")
	}
	s.client.SetToken(sec.Auth.ClientToken)
	return sec, nil
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func (s *Service) loginToken(ctx context.Context) (*vault.Secret, error) {
	tok := os.Getenv("VAULT_TOKEN")
	src := "VAULT_TOKEN"
	if s.cfg.TokenFile != "" {
		var err error
		if tok, err = readSecretFile("token_file", s.cfg.TokenFile); err != nil {
			return nil, err
		}
		src = s.cfg.TokenFile
	}
	if tok == "" {
		return nil, errors.New("vault: auth_method token needs token_file or the VAULT_TOKEN environment variable")
	}
	s.client.SetToken(tok)
	self, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		detail, kind := classify(err)
		return nil, fmt.Errorf("vault: token from %s: %w%s", src, kind, paren(detail))
	}
	renewable, _ := self.TokenIsRenewable()
	ttl, _ := self.TokenTTL()
	if !renewable || ttl == 0 {
		return nil, nil // root or periodic-less token: nothing to renew
	}
	sec, err := s.client.Auth().Token().RenewSelfWithContext(ctx, 0)
	if err != nil {
		detail, kind := classify(err)
		return nil, fmt.Errorf("vault: renew token from %s: %w%s", src, kind, paren(detail))
	}
	return sec, nil
}

// Run keeps the daemon logged in until ctx ends: it renews the token while
// it can and logs in again when it cannot (AppRole: a new login; token: the
// token file is read again, so a Vault Agent sink works). It also ends
// grants whose attempt's deadline passed.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.grants.expireLoop(ctx) })
	defer wg.Wait()
	backoff := retry.Backoff(time.Second, time.Minute)
	for ctx.Err() == nil {
		sec, err := s.login(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			in := backoff.NextBackOff()
			s.log.Warn("vault: not authenticated; retrying", "address", s.cfg.Address, "auth", s.cfg.AuthMethod, "err", err, "in", in)
			if !retry.Sleep(ctx, in) {
				return
			}
			continue
		}
		backoff.Reset()
		s.log.Info("vault: authenticated", "address", s.cfg.Address, "auth", s.cfg.AuthMethod)
		if sec == nil {
			// Nothing to renew; check now and then that the token still
			// works, and log in again when it does not.
			for retry.Sleep(ctx, time.Minute) {
				if _, err := s.client.Auth().Token().LookupSelfWithContext(ctx); err != nil {
					break
				}
			}
			continue
		}
		s.watch(ctx, sec)
	}
}

// watch renews sec until it can no longer be renewed or ctx ends.
func (s *Service) watch(ctx context.Context, sec *vault.Secret) {
	w, err := s.client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		s.log.Warn("vault: cannot renew the token; logging in again", "err", err)
		retry.Sleep(ctx, time.Second)
		return
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-w.DoneCh():
			if err != nil {
				detail, kind := classify(err)
				s.log.Warn("vault: token renewal stopped; logging in again", "err", kind, "detail", detail)
			} else {
				s.log.Info("vault: token reached its maximum TTL; logging in again")
			}
			return
		case <-w.RenewCh():
			s.log.Debug("vault: token renewed")
		}
	}
}

// Health reports Vault's state: sealed and unreachable come from Vault's
// unauthenticated seal-status endpoint, the rest from the daemon's login.
func (s *Service) Health(ctx context.Context) Health {
	if s == nil {
		return Health{State: StateOff}
	}
	h := Health{Address: s.cfg.Address, Auth: s.cfg.AuthMethod}
	ctx, cancel := context.WithTimeout(ctx, min(s.timeout, 3*time.Second))
	defer cancel()
	st, err := s.client.Sys().SealStatusWithContext(ctx)
	switch {
	case err != nil:
		detail, kind := classify(err)
		h.State, h.Error = StateUnreachable, kind.Error()+paren(detail)
		if errors.Is(kind, secret.ErrSealed) {
			h.State = StateSealed
		}
		return h
	case st.Sealed:
		h.State, h.Error = StateSealed, secret.ErrSealed.Error()
		return h
	}
	s.mu.Lock()
	authErr := s.authErr
	s.mu.Unlock()
	if authErr != nil {
		h.State, h.Error = StateUnauthenticated, authErr.Error()
		return h
	}
	h.State = StateOK
	return h
}

// raw sends one request with the daemon's token and extra headers.
func (s *Service) read(ctx context.Context, path string, hdr http.Header) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.client.Logical().ReadWithRequest(ctx, vault.NewLogicalReadRequest(path, nil, hdr))
}

// countingRetry wraps the client's retry policy, which sees the outcome of
// every request the client sends (retries included), to count them: the
// one place all of the client's calls pass, whatever API they use.
func countingRetry(next retryablehttp.CheckRetry, m *metrics.Metrics) retryablehttp.CheckRetry {
	if next == nil {
		next = vault.DefaultRetryPolicy
	}
	if m == nil {
		return next
	}
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		m.VaultCall(err == nil && resp != nil && resp.StatusCode < 500, time.Now())
		return next(ctx, resp, err)
	}
}
