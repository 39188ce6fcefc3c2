package audit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rpacloud/rpacloud/core/audit"
)

// TestClientAddr walks every case of ClientAddr: headers count only from
// a trusted peer, X-Forwarded-For's rightmost untrusted entry wins over
// whatever a client wrote to its left, X-Real-IP is the fallback, and
// anything unparsable falls back to the peer.
func TestClientAddr(t *testing.T) {
	p, err := audit.NewProxies([]string{"10.0.0.0/8", "127.0.0.1/32", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	type hdr = map[string][]string
	for _, c := range []struct {
		name, peer string
		h          hdr
		want       string
	}{
		{"untrusted peer, no header", "203.0.113.9:5555", nil, "203.0.113.9:5555"},
		{"untrusted peer, spoofed XFF ignored", "203.0.113.9:5555", hdr{"X-Forwarded-For": {"198.51.100.1"}}, "203.0.113.9:5555"},
		{"untrusted peer, spoofed X-Real-IP ignored", "203.0.113.9:5555", hdr{"X-Real-Ip": {"198.51.100.1"}}, "203.0.113.9:5555"},
		{"untrusted peer in a neighbouring network", "11.0.0.1:1", hdr{"X-Forwarded-For": {"198.51.100.1"}}, "11.0.0.1:1"},
		{"trusted peer, no header", "127.0.0.1:4000", nil, "127.0.0.1:4000"},
		{"trusted peer, one XFF entry", "127.0.0.1:4000", hdr{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"trusted peer, client-forged entry left of the proxy's", "127.0.0.1:4000", hdr{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1"}}, "198.51.100.1"},
		{"two trusted hops", "10.1.1.1:80", hdr{"X-Forwarded-For": {"6.6.6.6, 198.51.100.1, 10.2.2.2"}}, "198.51.100.1"},
		{"XFF over two header lines", "10.1.1.1:80", hdr{"X-Forwarded-For": {"6.6.6.6", "198.51.100.1, 10.2.2.2"}}, "198.51.100.1"},
		{"every XFF entry trusted: the leftmost", "127.0.0.1:4000", hdr{"X-Forwarded-For": {"10.9.9.9, 127.0.0.1"}}, "10.9.9.9"},
		{"rightmost untrusted entry garbage: the peer", "127.0.0.1:4000", hdr{"X-Forwarded-For": {"198.51.100.1, not-an-ip"}}, "127.0.0.1:4000"},
		{"garbage left of a trusted entry: the peer", "127.0.0.1:4000", hdr{"X-Forwarded-For": {"junk, 10.0.0.1"}}, "127.0.0.1:4000"},
		{"empty XFF: the peer, X-Real-IP not consulted", "127.0.0.1:4000", hdr{"X-Forwarded-For": {""}, "X-Real-Ip": {"198.51.100.7"}}, "127.0.0.1:4000"},
		{"XFF wins over X-Real-IP", "127.0.0.1:4000", hdr{"X-Forwarded-For": {"198.51.100.1"}, "X-Real-Ip": {"198.51.100.7"}}, "198.51.100.1"},
		{"X-Real-IP alone", "127.0.0.1:4000", hdr{"X-Real-Ip": {"198.51.100.7"}}, "198.51.100.7"},
		{"X-Real-IP garbage", "127.0.0.1:4000", hdr{"X-Real-Ip": {"nope"}}, "127.0.0.1:4000"},
		{"IPv6 trusted peer, IPv6 client", "[fd00::1]:443", hdr{"X-Forwarded-For": {"2001:db8::5"}}, "2001:db8::5"},
		{"IPv6 untrusted peer", "[2001:db8::9]:443", hdr{"X-Forwarded-For": {"2001:db8::5"}}, "[2001:db8::9]:443"},
		{"IPv4-mapped trusted peer", "[::ffff:127.0.0.1]:4000", hdr{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"unparsable peer", "@", hdr{"X-Forwarded-For": {"198.51.100.1"}}, "@"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := p.ClientAddr(http.Header(c.h), c.peer); got != c.want {
				t.Errorf("ClientAddr(%v, %q) = %q, want %q", c.h, c.peer, got, c.want)
			}
		})
	}
	var none *audit.Proxies
	if got := none.ClientAddr(http.Header{"X-Forwarded-For": {"198.51.100.1"}}, "127.0.0.1:1"); got != "127.0.0.1:1" {
		t.Errorf("no trusted networks: %q", got)
	}
	if _, err := audit.NewProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad network was accepted")
	}
}

// TestProxiesMiddleware: what the handlers after it (the audit trail's
// FromHTTP, the enrolment rate limit) see as RemoteAddr.
func TestProxiesMiddleware(t *testing.T) {
	p, err := audit.NewProxies([]string{"127.0.0.1/32"})
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := p.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = audit.FromHTTP(r).RemoteAddr }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:999"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "198.51.100.1" {
		t.Errorf("trusted: %q", seen)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:999"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if seen != "192.0.2.1:999" {
		t.Errorf("untrusted: %q", seen)
	}
	var none *audit.Proxies
	if none.Middleware(h) == nil {
		t.Error("nil Proxies' middleware")
	}
}
