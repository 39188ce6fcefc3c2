package netpolicy

import (
	"errors"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

func TestCheck(t *testing.T) {
	p, err := New("tax-bureau", &sdk.NetworkProfile{
		Allow: []string{"etax.example.gov", "*.etax.example.gov", "10.20.0.0/16", "127.0.0.1"},
		Deny:  []string{"*", "admin.etax.example.gov", "10.20.9.0/24"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		host string
		ok   bool
		rule string
	}{
		{"etax.example.gov", true, ""},
		{"ETAX.example.gov.", true, ""},
		{"www.etax.example.gov", true, ""},
		{"admin.etax.example.gov", false, "admin.etax.example.gov"},
		{"example.gov", false, "*"},
		{"evil.com", false, "*"},
		{"10.20.1.1", true, ""},
		{"10.20.9.5", false, "10.20.9.0/24"},
		{"127.0.0.1:8080", true, ""},
		{"[::ffff:127.0.0.1]:80", true, ""},
		{"localhost", false, "*"},
	}
	for _, c := range cases {
		err := p.Check(c.host)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", c.host, err, c.ok)
			continue
		}
		if err != nil {
			var de *DeniedError
			if !errors.As(err, &de) || de.Rule != c.rule || de.Profile != "tax-bureau" || !errors.Is(err, ErrDenied) {
				t.Errorf("Check(%q) = %#v, want rule %q", c.host, err, c.rule)
			}
			if !strings.Contains(err.Error(), "tax-bureau") {
				t.Errorf("message %q does not name the profile", err)
			}
		}
	}
}

func TestAllowListOnly(t *testing.T) {
	p, _ := New("p", &sdk.NetworkProfile{Allow: []string{"a.test"}})
	if p.Check("a.test") != nil || p.Check("b.test") == nil {
		t.Fatal("allow list without deny must deny what it does not list")
	}
	if !strings.Contains(p.Check("b.test").Error(), "no allow pattern") {
		t.Error(p.Check("b.test"))
	}
	q, _ := New("q", &sdk.NetworkProfile{Deny: []string{"*.bad.test"}})
	if q.Check("x.bad.test") == nil || q.Check("bad.test") != nil || q.Check("good.test") != nil {
		t.Fatal("deny list only: wildcard covers subdomains only")
	}
	var nilp *Policy
	if nilp.Check("anything") != nil || nilp.CheckURL("http://x") != nil {
		t.Fatal("nil policy must allow everything")
	}
}

func TestBadPatterns(t *testing.T) {
	for _, s := range []string{"", "a.*.com", "http://x", "10.0.0.0/33", "a b"} {
		if _, err := New("p", &sdk.NetworkProfile{Allow: []string{s}}); err == nil {
			t.Errorf("pattern %q accepted", s)
		}
	}
	if _, err := New("p", &sdk.NetworkProfile{DNS: []string{"dns.google"}}); err == nil {
		t.Error("non-IP DNS accepted")
	}
}

func TestCheckURL(t *testing.T) {
	p, _ := New("p", &sdk.NetworkProfile{Allow: []string{"ok.test"}})
	if p.CheckURL("data:text/html,hi") != nil || p.CheckURL("about:blank") != nil {
		t.Error("non-network URLs must pass")
	}
	if p.CheckURL("https://ok.test/x") != nil || p.CheckURL("wss://no.test/") == nil {
		t.Error("network URLs must be checked")
	}
}
