// Package vendorhttp is the HTTP plumbing vendor plugins share: JSON
// requests with a deadline, rate limiting (HTTP 429 and 503 with
// Retry-After) waited out up to a bound, and replies that are not what the
// vendor documents reported as errors that say which call got what,
// instead of a decoder's bare message.
package vendorhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client sends JSON requests to one vendor.
type Client struct {
	HTTP   *http.Client
	Vendor string // "UiPath Orchestrator", for messages
	// MaxRetries bounds how many rate-limited replies one call waits out.
	MaxRetries int
	// MaxWait caps one Retry-After wait; longer waits fail the call.
	MaxWait time.Duration
	// Sleep waits; tests may shorten it. Nil means a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// StatusError is a reply with an unexpected HTTP status.
type StatusError struct {
	Vendor, Method, Path string
	Status               int
	Message              string // the vendor's message, when it sent one
}

func (e *StatusError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s %s: HTTP %d: %s", e.Vendor, e.Method, e.Path, e.Status, msg)
}

// ErrRateLimited is wrapped when a call stayed rate limited.
var ErrRateLimited = errors.New("rate limited")

// ErrMalformed is wrapped when a reply is not the JSON the vendor documents.
var ErrMalformed = errors.New("malformed reply")

// Request is one call.
type Request struct {
	Method  string
	URL     string
	Path    string // for messages: the path without host and query
	Header  http.Header
	Body    any    // JSON-encoded when not nil and not []byte
	Form    string // an application/x-www-form-urlencoded body instead
	Expect  []int  // accepted statuses; default 200, 201, 202, 204
	Message func(body []byte) string
}

// Do sends req and decodes the JSON reply into out (unless out is nil).
func (c *Client) Do(ctx context.Context, req Request, out any) (int, error) {
	var payload []byte
	ctype := ""
	switch b := req.Body.(type) {
	case nil:
	case []byte:
		payload, ctype = b, "application/json"
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return 0, fmt.Errorf("%s %s %s: encode request: %w", c.Vendor, req.Method, req.Path, err)
		}
		ctype = "application/json"
	}
	if req.Form != "" {
		payload, ctype = []byte(req.Form), "application/x-www-form-urlencoded"
	}
	expect := req.Expect
	if len(expect) == 0 {
		expect = []int{200, 201, 202, 204}
	}
	for attempt := 0; ; attempt++ {
		hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(payload))
		if err != nil {
			return 0, fmt.Errorf("%s %s %s: %w", c.Vendor, req.Method, req.Path, err)
		}
		for k, v := range req.Header {
			hreq.Header[k] = v
		}
		if ctype != "" {
			hreq.Header.Set("Content-Type", ctype)
		}
		hreq.Header.Set("Accept", "application/json")
		resp, err := c.HTTP.Do(hreq)
		if err != nil {
			return 0, fmt.Errorf("%s %s %s: %w", c.Vendor, req.Method, req.Path, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s %s: read reply: %w", c.Vendor, req.Method, req.Path, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			wait := RetryAfter(resp.Header.Get("Retry-After"), time.Now())
			if wait <= 0 {
				wait = time.Duration(1<<min(attempt, 5)) * time.Second
			}
			if attempt >= c.MaxRetries || (c.MaxWait > 0 && wait > c.MaxWait) {
				return resp.StatusCode, fmt.Errorf("%s %s %s: %w: HTTP %d after %d retries (Retry-After %q)",
					c.Vendor, req.Method, req.Path, ErrRateLimited, resp.StatusCode, attempt, resp.Header.Get("Retry-After"))
			}
			if err := c.sleep(ctx, wait); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s %s: waiting out rate limit: %w", c.Vendor, req.Method, req.Path, err)
			}
			continue
		}
		ok := false
		for _, s := range expect {
			ok = ok || s == resp.StatusCode
		}
		if !ok {
			se := &StatusError{Vendor: c.Vendor, Method: req.Method, Path: req.Path, Status: resp.StatusCode}
			if req.Message != nil {
				se.Message = req.Message(body)
			}
			if se.Message == "" {
				se.Message = snippet(body)
			}
			return resp.StatusCode, se
		}
		if out == nil || len(bytes.TrimSpace(body)) == 0 && resp.StatusCode == http.StatusNoContent {
			return resp.StatusCode, nil
		}
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s %s: %w (HTTP %d, %s): %v; reply starts %q",
				c.Vendor, req.Method, req.Path, ErrMalformed, resp.StatusCode, resp.Header.Get("Content-Type"), err, snippet(body))
		}
		return resp.StatusCode, nil
	}
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RetryAfter parses a Retry-After header: seconds or an HTTP date.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
