package audit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/realclientip/realclientip-go"
)

// Proxies says which direct peers are reverse proxies whose
// X-Forwarded-For and X-Real-IP headers name the client (the server
// block's trusted_proxies). A header from any other peer is the client's
// own to write and is ignored, so a client cannot choose the address the
// audit trail records for it.
type Proxies struct {
	nets []net.IPNet
	xff  realclientip.RightmostTrustedRangeStrategy
	xri  realclientip.SingleIPHeaderStrategy
}

// NewProxies returns the Proxies of networks in CIDR notation; nil (trust
// no header) when there are none.
func NewProxies(cidrs []string) (*Proxies, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	p := &Proxies{}
	for _, c := range cidrs {
		pre, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy network %q: %w", c, err)
		}
		_, n, err := net.ParseCIDR(pre.Masked().String())
		if err != nil {
			return nil, fmt.Errorf("trusted proxy network %q: %w", c, err)
		}
		p.nets = append(p.nets, *n)
	}
	var err error
	if p.xff, err = realclientip.NewRightmostTrustedRangeStrategy("X-Forwarded-For", p.nets); err != nil {
		return nil, err
	}
	if p.xri, err = realclientip.NewSingleIPHeaderStrategy("X-Real-IP"); err != nil {
		return nil, err
	}
	return p, nil
}

// ClientAddr is the address of the client of a request from peer
// (http.Request.RemoteAddr, "host:port") with headers h:
//
//   - peer not in a trusted network (or p nil): peer, headers ignored;
//   - X-Forwarded-For present: its rightmost address not in a trusted
//     network (each trusted proxy appends the address it saw, so the
//     entries left of the first untrusted one are the client's to forge);
//     when every entry is trusted, the leftmost; when that entry is not
//     an address, peer;
//   - else a valid X-Real-IP;
//   - else peer.
//
// An address from a header has no port.
func (p *Proxies) ClientAddr(h http.Header, peer string) string {
	if p == nil || !p.trusted(peer) {
		return peer
	}
	if len(h.Values("X-Forwarded-For")) > 0 {
		if ip := p.xff.ClientIP(h, peer); ip != "" {
			return ip
		}
		return p.leftmostTrusted(h, peer)
	}
	if ip := p.xri.ClientIP(h, peer); ip != "" {
		return ip
	}
	return peer
}

// trusted reports whether peer ("host:port" or a bare address) is in one
// of the networks.
func (p *Proxies) trusted(peer string) bool {
	a, ok := hostAddr(peer)
	if !ok {
		return false
	}
	ip := net.IP(a.AsSlice())
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// hostAddr parses "host:port", "[v6]:port" or a bare address, without a
// zone, IPv4-mapped IPv6 as IPv4.
func hostAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// leftmostTrusted is the case where the rightmost-untrusted walk found
// nothing: either every entry is a trusted address (the client is on a
// trusted network itself: the leftmost is the furthest hop) or the walk
// stopped at an entry that is not an address (peer).
func (p *Proxies) leftmostTrusted(h http.Header, peer string) string {
	var first netip.Addr
	for i, v := range h.Values("X-Forwarded-For") {
		for j, e := range strings.Split(v, ",") {
			a, ok := hostAddr(e)
			if !ok || !p.trusted(e) {
				return peer
			}
			if i == 0 && j == 0 {
				first = a
			}
		}
	}
	return first.String()
}

// Middleware sets each request's RemoteAddr to ClientAddr, for every
// handler after it: the audit trail (FromHTTP), the logs and per-address
// rate limits (enrolment) alike. With no trusted networks it is next.
func (p *Proxies) Middleware(next http.Handler) http.Handler {
	if p == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// In place, as the server's own request: nothing before this
		// handler has read RemoteAddr.
		r.RemoteAddr = p.ClientAddr(r.Header, r.RemoteAddr)
		next.ServeHTTP(w, r)
	})
}
