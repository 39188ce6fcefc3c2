// Package netpolicy enforces a pool's network profile inside crawler
// plugins: which hosts a robot may reach (allow/deny host patterns), through
// which proxy, with which DNS servers. Crawlers check every request against
// it before sending, including the ones a web page makes by itself.
//
// Matching: the most specific matching pattern decides (an exact host or
// IP beats a wildcard or CIDR, a longer wildcard suffix or CIDR prefix beats
// a shorter one, `*` is the least specific); between an allow and a deny
// pattern of the same specificity, deny wins. A host no pattern matches is
// allowed when the allow list is empty and denied otherwise.
package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// ErrDenied is returned (wrapped in *DeniedError) for a host the profile
// does not let robots reach.
var ErrDenied = errors.New("host denied by network profile")

// DeniedError names the host and the profile.
type DeniedError struct {
	Host    string
	Profile string
	Rule    string // the deciding pattern, or "" when no allow pattern matched
}

func (e *DeniedError) Error() string {
	why := "it matches no allow pattern"
	if e.Rule != "" {
		why = "it matches deny pattern " + quote(e.Rule)
	}
	return fmt.Sprintf("network profile %s denies host %s: %s", quote(e.Profile), e.Host, why)
}

// Unwrap lets errors.Is(err, ErrDenied) work.
func (e *DeniedError) Unwrap() error { return ErrDenied }

func quote(s string) string { return `"` + s + `"` }

type pattern struct {
	text   string
	any    bool
	host   string       // exact host name
	suffix string       // "*.example.com" → ".example.com"
	prefix netip.Prefix // IP (as /32 or /128) or CIDR
}

// specificity orders patterns; higher wins.
func (p pattern) specificity() int {
	switch {
	case p.any:
		return 0
	case p.suffix != "":
		return 1000 + len(p.suffix)
	case p.prefix.IsValid():
		return 1000 + p.prefix.Bits()*4
	}
	return 10000 // exact host
}

func (p pattern) match(host string, ip netip.Addr) bool {
	switch {
	case p.any:
		return true
	case p.suffix != "":
		return strings.HasSuffix(host, p.suffix) && len(host) > len(p.suffix)
	case p.prefix.IsValid():
		return ip.IsValid() && p.prefix.Contains(ip)
	}
	return host == p.host
}

func parsePattern(s string) (pattern, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch {
	case t == "":
		return pattern{}, errors.New("empty host pattern")
	case t == "*":
		return pattern{text: s, any: true}, nil
	case strings.HasPrefix(t, "*."):
		if strings.Contains(t[2:], "*") || len(t) < 3 {
			return pattern{}, fmt.Errorf("host pattern %q: * is allowed only as the whole first label", s)
		}
		return pattern{text: s, suffix: t[1:]}, nil
	case strings.Contains(t, "/"):
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return pattern{}, fmt.Errorf("host pattern %q: %v", s, err)
		}
		return pattern{text: s, prefix: p.Masked()}, nil
	}
	if ip, err := netip.ParseAddr(t); err == nil {
		return pattern{text: s, prefix: netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())}, nil
	}
	if strings.ContainsAny(t, "*:/ ") {
		return pattern{}, fmt.Errorf("host pattern %q: not a host name, *.domain, IP address or CIDR", s)
	}
	return pattern{text: s, host: strings.TrimSuffix(t, ".")}, nil
}

// Policy is a compiled network profile. The zero value and nil allow
// everything and use the system's network.
type Policy struct {
	Name  string
	Proxy *url.URL
	DNS   []string
	allow []pattern
	deny  []pattern
}

// New compiles a profile. A nil profile gives a nil Policy, which allows
// everything.
func New(name string, p *sdk.NetworkProfile) (*Policy, error) {
	if p == nil {
		return nil, nil
	}
	out := &Policy{Name: name, DNS: p.DNS}
	if p.Proxy != "" {
		u, err := url.Parse(p.Proxy)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("network profile %q: proxy %q is not a URL with a host", name, p.Proxy)
		}
		out.Proxy = u
	}
	for _, d := range p.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return nil, fmt.Errorf("network profile %q: dns %q is not an IP address", name, d)
		}
	}
	for _, s := range p.Allow {
		pt, err := parsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("network profile %q: allow: %w", name, err)
		}
		out.allow = append(out.allow, pt)
	}
	for _, s := range p.Deny {
		pt, err := parsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("network profile %q: deny: %w", name, err)
		}
		out.deny = append(out.deny, pt)
	}
	return out, nil
}

// Check returns nil when host (a name or IP, with or without a port) may
// be reached, and a *DeniedError otherwise.
func (p *Policy) Check(host string) error {
	if p == nil {
		return nil
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	ip, _ := netip.ParseAddr(host)
	ip = ip.Unmap()
	best, bestRule, allowed := -1, "", len(p.allow) == 0
	for _, pt := range p.allow {
		if s := pt.specificity(); pt.match(host, ip) && s > best {
			best, bestRule, allowed = s, pt.text, true
		}
	}
	for _, pt := range p.deny {
		if s := pt.specificity(); pt.match(host, ip) && s >= best {
			best, bestRule, allowed = s, pt.text, false
		}
	}
	if allowed {
		return nil
	}
	if best < 0 {
		bestRule = ""
	}
	return &DeniedError{Host: host, Profile: p.Name, Rule: bestRule}
}

// CheckURL checks the host of a URL. Only http(s) and ws(s) URLs reach the
// network; data:, blob: and about: URLs pass.
func (p *Policy) CheckURL(raw string) error {
	if p == nil {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("network profile %q: unparsable URL %q: %w", p.Name, raw, err)
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss", "ftp":
		return p.Check(u.Hostname())
	}
	return nil
}

// Transport returns an http.Transport that goes through the profile's
// proxy, resolves names with its DNS servers, and refuses denied hosts
// before connecting (on every redirect too, since each hop dials anew or
// reuses a connection to an already checked host).
func (p *Policy) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 15 * time.Second}
	if p == nil {
		t.Proxy = nil
		t.DialContext = dialer.DialContext
		return t
	}
	if len(p.DNS) > 0 {
		servers := p.DNS
		dialer.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			var lastErr error
			for _, s := range servers {
				c, err := d.DialContext(ctx, network, net.JoinHostPort(s, "53"))
				if err == nil {
					return c, nil
				}
				lastErr = err
			}
			return nil, lastErr
		}}
	}
	t.Proxy = func(r *http.Request) (*url.URL, error) {
		if err := p.Check(r.URL.Hostname()); err != nil {
			return nil, err
		}
		return p.Proxy, nil // nil: direct
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		// With a proxy addr is the proxy; the target was checked in Proxy.
		if p.Proxy == nil {
			if err := p.Check(addr); err != nil {
				return nil, err
			}
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return t
}
