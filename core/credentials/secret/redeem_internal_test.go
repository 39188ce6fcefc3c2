package secret

import (
	"net/http"
	"net/url"
	"testing"
)

// A redeem follows a standby's one redirect to the active node, but not a
// chain of them and never from https to http: the request carries a
// single-use wrapping token.
func TestOneSafeRedirect(t *testing.T) {
	req := func(u string) *http.Request {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Request{URL: p}
	}
	for _, c := range []struct {
		to   string
		via  []string
		fine bool
	}{
		{"https://active:8200/v1/sys/wrapping/unwrap", []string{"https://standby:8200/v1/sys/wrapping/unwrap"}, true},
		{"http://active:8200/v1/sys/wrapping/unwrap", []string{"http://standby:8200/v1/sys/wrapping/unwrap"}, true},
		{"http://active:8200/v1/sys/wrapping/unwrap", []string{"https://standby:8200/v1/sys/wrapping/unwrap"}, false},
		{"https://c/v1/x", []string{"https://a/v1/x", "https://b/v1/x"}, false},
	} {
		var via []*http.Request
		for _, v := range c.via {
			via = append(via, req(v))
		}
		if err := oneSafeRedirect(req(c.to), via); (err == nil) != c.fine {
			t.Errorf("redirect %v → %s: err = %v, want allowed %v", c.via, c.to, err, c.fine)
		}
	}
}
