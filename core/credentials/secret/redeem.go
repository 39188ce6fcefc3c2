package secret

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/hashicorp/go-rootcerts"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

// Redeem is the robot's side of a grant: it unwraps every credential of g
// straight from Vault into memory, checking first that each wrapping token
// was made by reading exactly the path the grant names. Nothing is written
// to disk. An error names the credential and what went wrong (sealed,
// unreachable, expired, denied), never a value; the robot reports it as an
// execution error so the task is retried per its process's policy.
//
// It speaks Vault's HTTP API itself (two calls per credential) instead of
// through Vault's client library, whose package links an HCL parser into
// every robot; TLS settings come from the robot's environment as the
// library would read them (VAULT_CACERT, VAULT_CAPATH, VAULT_CACERT_BYTES,
// VAULT_CLIENT_CERT, VAULT_CLIENT_KEY, VAULT_TLS_SERVER_NAME,
// VAULT_SKIP_VERIFY, VAULT_NAMESPACE), requests are retried and redirects
// followed as the library does (see vaultHTTP).
func Redeem(ctx context.Context, g *robotwire.Grant) (Secrets, error) {
	if g == nil || len(g.Items) == 0 {
		return nil, nil
	}
	hc, err := vaultHTTP()
	if err != nil {
		return nil, fmt.Errorf("vault client configuration: %w", err)
	}
	// Each redemption is a handful of requests per attempt: keep no
	// connections (nor goroutines) around afterwards.
	defer hc.HTTPClient.CloseIdleConnections()
	base, err := url.Parse(g.VaultAddress)
	if err != nil || base.Scheme == "" || base.Host == "" {
		name := g.Items[0].Name
		return nil, &Error{Op: "read", Credential: name, Kind: ErrUnreachable, Detail: "bad Vault address"}
	}
	out := make(Secrets, len(g.Items))
	for _, it := range g.Items {
		// The wrapping token is the only token these requests ever carry.
		var info struct {
			Data *struct {
				CreationPath string `json:"creation_path"`
			} `json:"data"`
		}
		if err := vaultCall(ctx, hc, base, "sys/wrapping/lookup", it.WrappingToken, map[string]any{"token": it.WrappingToken}, &info); err != nil {
			return nil, redeemError(it.Name, err)
		}
		if info.Data == nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrExpired}
		}
		if info.Data.CreationPath != it.Path {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrDenied, Detail: "the wrapping token was not made for this credential"}
		}
		var sec struct {
			Data map[string]any `json:"data"`
		}
		if err := vaultCall(ctx, hc, base, "sys/wrapping/unwrap", it.WrappingToken, nil, &sec); err != nil {
			return nil, redeemError(it.Name, err)
		}
		if sec.Data == nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrNotFound}
		}
		// A KV v2 read: the fields are under data.data.
		data, _ := sec.Data["data"].(map[string]any)
		if data == nil {
			return nil, &Error{Op: "read", Credential: it.Name, Kind: ErrNotFound, Detail: "every version is deleted"}
		}
		out[it.Name] = FromData(data)
	}
	return out, nil
}

// Deliver is the robot agent's one call: it redeems the grant of a claimed
// attempt (if any) and returns ctx carrying the secrets for the attempt's
// runner or plugin (SecretsFrom). The error is an execution error naming
// the credential.
func Deliver(ctx context.Context, g *robotwire.Grant) (context.Context, error) {
	if g == nil || len(g.Items) == 0 {
		return ctx, nil
	}
	s, err := Redeem(ctx, g)
	if err != nil {
		return ctx, err
	}
	return WithSecrets(ctx, s), nil
}

// vaultAnswer is a Vault reply that was not a success: its status and the
// texts of its "errors" list, which are classified and never shown.
type vaultAnswer struct {
	status   int
	messages []string
}

func (a *vaultAnswer) Error() string { return "vault answered HTTP " + strconv.Itoa(a.status) }

// redeemError classifies a failed Vault call the way the daemon's client
// does (Classify): the answer's status and words, or an unreachable server.
func redeemError(cred string, err error) error {
	var a *vaultAnswer
	if errors.As(err, &a) {
		detail, kind := Classify(a.status, a.messages)
		return &Error{Op: "read", Credential: cred, Kind: kind, Detail: detail}
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") {
		return &Error{Op: "read", Credential: cred, Kind: ErrUnreachable}
	}
	return &Error{Op: "read", Credential: cred, Kind: ErrVault}
}

// vaultCall POSTs body (nil: none) to /v1/path with token and decodes a
// success into out.
func vaultCall(ctx context.Context, hc *retryablehttp.Client, base *url.URL, path, token string, body any, out any) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	u := base.JoinPath("v1", path)
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", token)
	req.Header.Set("X-Vault-Request", "true")
	if ns := os.Getenv("VAULT_NAMESPACE"); ns != "" {
		// Vault Enterprise and HCP: the wrapping token lives in a namespace.
		req.Header.Set("X-Vault-Namespace", ns)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Errors []string `json:"errors"`
		}
		_ = json.Unmarshal(b, &e)
		return &vaultAnswer{status: resp.StatusCode, messages: e.Errors}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	// UseNumber keeps whole numbers in secret fields exact, as Vault's own
	// client decodes them.
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return &vaultAnswer{status: resp.StatusCode, messages: []string{"malformed reply"}}
	}
	return nil
}

// vaultHTTP is an HTTP client set up as Vault's client library sets up its
// default one: TLS from the environment, a 15 s time-out, two retries of
// server errors and lost connections with linear jittered back-off.
func vaultHTTP() (*retryablehttp.Client, error) {
	tr := cleanhttp.DefaultPooledTransport()
	tr.TLSHandshakeTimeout = 10 * time.Second
	tlsc := &tls.Config{MinVersion: tls.VersionTLS12}
	if err := rootcerts.ConfigureTLS(tlsc, &rootcerts.Config{
		CAFile:        os.Getenv("VAULT_CACERT"),
		CACertificate: []byte(os.Getenv("VAULT_CACERT_BYTES")),
		CAPath:        os.Getenv("VAULT_CAPATH"),
	}); err != nil {
		return nil, err
	}
	if cert, key := os.Getenv("VAULT_CLIENT_CERT"), os.Getenv("VAULT_CLIENT_KEY"); cert != "" && key != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("VAULT_CLIENT_CERT/VAULT_CLIENT_KEY: %w", err)
		}
		tlsc.Certificates = []tls.Certificate{c}
	}
	tlsc.ServerName = os.Getenv("VAULT_TLS_SERVER_NAME")
	if v := os.Getenv("VAULT_SKIP_VERIFY"); v != "" {
		skip, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("VAULT_SKIP_VERIFY: %w", err)
		}
		tlsc.InsecureSkipVerify = skip
	}
	tr.TLSClientConfig = tlsc
	return &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: tr, Timeout: 15 * time.Second, CheckRedirect: oneSafeRedirect},
		RetryWaitMin: time.Second,
		RetryWaitMax: 1500 * time.Millisecond,
		RetryMax:     2,
		CheckRetry:   retryPolicy,
		Backoff:      retryablehttp.LinearJitterBackoff,
		// The last answer is classified, not replaced by "giving up".
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}, nil
}

// oneSafeRedirect follows a standby's redirect to the active node once, as
// Vault's client library does, and never from https to http: the request
// carries a single-use wrapping token, which must not travel in clear text
// or hop through a chain of hosts.
func oneSafeRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > 1 {
		return errors.New("vault: more than one redirect")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("vault: redirect from https to " + req.URL.Scheme + " refused")
	}
	return nil
}

// retryPolicy is Vault's client library's: server errors and lost
// connections, and also 412 (a performance standby has not yet caught up
// with a just-written token).
func retryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err == nil && resp != nil && resp.StatusCode == http.StatusPreconditionFailed {
		return true, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}
