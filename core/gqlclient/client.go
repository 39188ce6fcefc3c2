// Package gqlclient is the small GraphQL-over-HTTP client shared by the
// robot agent and the CLI.
//
// A client made with NewFailover knows several daemons that share one
// database (any of them can serve any request) and talks to one at a time:
// when the one in use cannot be reached, answers an HTTP 5xx or times out,
// the failed call returns its error as usual and the client moves to the
// next daemon of its list for the calls that follow (the caller's back-off
// paces the retries). A daemon's answer, a refusal included (HTTP 401 or
// any other 4xx, a GraphQL error), is final: another daemon of the same
// database would answer the same. The client stays with a daemon that
// answers; it does not go back to the first one on its own.
package gqlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Client talks to an rpacloud daemon, or to one of several (NewFailover).
// A copy shares the original's choice of daemon.
type Client struct {
	URL   string // the /graphql endpoint (one daemon: New)
	Token string
	HTTP  *http.Client
	// Log, when set, is told each move from one daemon to the next.
	Log *slog.Logger

	daemons *daemons // NewFailover's; nil: URL
}

// daemons are the /graphql endpoints of daemons sharing one database, in
// the order they are tried, and the one in use.
type daemons struct {
	endpoints []string
	cur       atomic.Int32
}

// New returns a client for the daemon at base (e.g. http://127.0.0.1:8080).
func New(base, token string) *Client {
	return &Client{
		URL:   endpoint(base),
		Token: token,
		HTTP:  &http.Client{Timeout: 60 * time.Second},
	}
}

// MaxServers bounds the daemons one client knows.
const MaxServers = 16

// NewFailover returns a client for the daemons at bases, which must share
// one database: it starts with the first and moves to the next when the
// one in use fails (see the package comment), saying so in log.
func NewFailover(bases []string, token string, log *slog.Logger) *Client {
	c := &Client{Token: token, HTTP: &http.Client{Timeout: 60 * time.Second}, Log: log}
	if len(bases) == 1 {
		c.URL = endpoint(bases[0])
		return c
	}
	c.daemons = &daemons{}
	for _, b := range bases {
		c.daemons.endpoints = append(c.daemons.endpoints, endpoint(b))
	}
	return c
}

func endpoint(base string) string { return strings.TrimRight(base, "/") + "/graphql" }

// ParseServers reads daemon base URLs given as a list whose items may
// themselves be comma-separated (a repeated --server flag, an environment
// variable): each must be an absolute http or https URL without a query,
// at most MaxServers in all, duplicates dropped. what names the source in
// errors, e.g. "--server".
func ParseServers(what string, items ...string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, item := range items {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimRight(strings.TrimSpace(s), "/")
			if s == "" {
				continue
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				return nil, fmt.Errorf("%s: %q is not a daemon URL: want http(s)://HOST[:PORT], e.g. http://10.0.0.5:8080", what, redact(s))
			}
			if len(out) > 0 && !strings.HasPrefix(s, strings.SplitN(out[0], ":", 2)[0]+":") {
				// A failover must not carry the robot's token from TLS to
				// plain HTTP (or the other way without the operator
				// meaning it): every daemon of a list speaks the same.
				return nil, fmt.Errorf("%s: %q and %q mix http and https; give every daemon the same scheme", what, redact(out[0]), redact(s))
			}
			if seen[s] {
				continue
			}
			seen[s] = true
			out = append(out, s)
			if len(out) > MaxServers {
				return nil, fmt.Errorf("%s: more than %d daemon URLs", what, MaxServers)
			}
		}
	}
	return out, nil
}

// redact hides a password in a URL so it reaches no log or message.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}

// Server is the base URL of the daemon in use.
func (c *Client) Server() string {
	u, _ := c.current()
	return redact(strings.TrimSuffix(u, "/graphql"))
}

// current is the endpoint in use and its index among the daemons (-1:
// URL).
func (c *Client) current() (string, int32) {
	if c.daemons == nil || len(c.daemons.endpoints) == 0 {
		return c.URL, -1
	}
	i := c.daemons.cur.Load()
	return c.daemons.endpoints[i], i
}

// failover moves from the endpoint at index i to the next, unless another
// call already moved away from it (several calls in flight fail together
// when a daemon dies: they must move once, not skip the next daemon).
func (c *Client) failover(i int32, err error) {
	if i < 0 {
		return
	}
	d := c.daemons
	next := (i + 1) % int32(len(d.endpoints))
	if d.cur.CompareAndSwap(i, next) && c.Log != nil {
		c.Log.Warn("daemon unreachable; moving to the next one",
			"from", redact(strings.TrimSuffix(d.endpoints[i], "/graphql")),
			"to", redact(strings.TrimSuffix(d.endpoints[next], "/graphql")), "err", err)
	}
}

// Error is a GraphQL error returned by the server.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path,omitempty"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Code returns the error's extensions.code, if any.
func (e Error) Code() string {
	c, _ := e.Extensions["code"].(string)
	return c
}

// Errors is the errors list of a response.
type Errors []Error

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, x := range e {
		msgs[i] = x.Message
	}
	return "graphql: " + strings.Join(msgs, "; ")
}

// HasCode reports whether any error carries code.
func (e Errors) HasCode(code string) bool {
	for _, x := range e {
		if x.Code() == code {
			return true
		}
	}
	return false
}

// StatusError is a non-200 HTTP answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("graphql: HTTP %d: %s", e.Status, e.Body)
}

// ErrUnauthorized is wrapped by errors for HTTP 401.
var ErrUnauthorized = errors.New("unauthorized")

// Do runs one operation and decodes its data into out (which may be nil).
// With several daemons, a call that fails because the daemon in use is
// unreachable, answers 5xx or times out moves the client to the next one
// and returns its error: the caller retries, as it would with one.
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	u, i := c.current()
	err := c.do(ctx, u, query, vars, out)
	if err != nil && ctx.Err() == nil && unreachable(err) {
		c.failover(i, err)
	}
	return err
}

// unreachable reports whether err says the daemon did not answer (a
// transport failure or time-out, an unreadable answer) or failed on its
// side (HTTP 5xx, e.g. a proxy with no daemon behind it), as opposed to a
// daemon's answer, which another daemon would repeat.
func unreachable(err error) bool {
	var serr *StatusError
	if errors.As(err, &serr) {
		return serr.Status >= 500
	}
	var transport *transportError
	return errors.As(err, &transport)
}

// transportError marks a request that got no complete answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) do(ctx context.Context, u, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("graphql: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("graphql: %w", &transportError{err})
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("graphql: read response: %w", &transportError{err})
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("graphql: %w: %s", ErrUnauthorized, strings.TrimSpace(string(raw)))
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors Errors          `json:"errors"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		if resp.StatusCode != http.StatusOK {
			return &StatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(raw))}
		}
		return fmt.Errorf("graphql: decode response: %w", err)
	}
	if len(env.Errors) > 0 {
		return env.Errors
	}
	if resp.StatusCode != http.StatusOK {
		return &StatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(raw))}
	}
	if out != nil && len(env.Data) > 0 {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("graphql: decode data: %w", err)
		}
	}
	return nil
}
