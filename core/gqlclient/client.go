// Package gqlclient is the small GraphQL-over-HTTP client shared by the
// robot agent and the CLI.
package gqlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client talks to one rpacloud daemon.
type Client struct {
	URL   string // the /graphql endpoint
	Token string
	HTTP  *http.Client
}

// New returns a client for the daemon at base (e.g. http://127.0.0.1:8080).
func New(base, token string) *Client {
	return &Client{
		URL:   strings.TrimRight(base, "/") + "/graphql",
		Token: token,
		HTTP:  &http.Client{Timeout: 60 * time.Second},
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
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("graphql: encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("graphql: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("graphql: read response: %w", err)
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
