package vendorhttp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{"": 0, "3": 3 * time.Second, "-1": 0, "junk": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second, now.Add(-time.Hour).Format(http.TimeFormat): 0}
	for in, want := range cases {
		if got := RetryAfter(in, now); got != want {
			t.Errorf("RetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDo(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/limited":
			if n.Add(1) <= 2 {
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = w.Write([]byte(`{"ok":true}`))
		case "/always":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case "/html":
			_, _ = w.Write([]byte(`<html>maintenance</html>`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"Release does not exist."}`))
		}
	}))
	defer srv.Close()
	var slept []time.Duration
	c := &Client{HTTP: srv.Client(), Vendor: "V", MaxRetries: 3, Sleep: func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		return nil
	}}
	var out struct{ OK bool }
	if _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/limited", Path: "/limited"}, &out); err != nil || !out.OK {
		t.Fatalf("limited: %v %v", err, out)
	}
	if len(slept) != 2 || slept[0] != 2*time.Second {
		t.Errorf("slept %v", slept)
	}
	if _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/always", Path: "/always"}, &out); !errors.Is(err, ErrRateLimited) {
		t.Errorf("always limited: %v", err)
	}
	if _, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/html", Path: "/html"}, &out); !errors.Is(err, ErrMalformed) {
		t.Errorf("html: %v", err)
	}
	_, err := c.Do(context.Background(), Request{Method: "GET", URL: srv.URL + "/x", Path: "/x"}, &out)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 404 || se.Error() != `V GET /x: HTTP 404: {"message":"Release does not exist."}` {
		t.Errorf("404: %v", err)
	}
}
