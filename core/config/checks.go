package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	// Schedules name IANA time zones; embedding the database makes
	// validation give the same answer on hosts without /usr/share/zoneinfo
	// (minimal containers, Windows).
	_ "time/tzdata"
)

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("not a HOST:PORT address")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// unspecifiedHost reports a listen address that binds every interface and
// so names no host a robot could dial.
func unspecifiedHost(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http:// or https:// URL", s)
	}
	if _, set := u.User.Password(); set {
		return fmt.Errorf("%q carries a password; secrets never live in configuration files", s)
	}
	return nil
}

// checkOrigin accepts a web origin as browsers send it in the Origin
// header, scheme://host[:port] and nothing more, and returns it in lower
// case. A wildcard is refused: the list says which pages may use a token.
func checkOrigin(s string) (string, error) {
	if s == "*" || strings.Contains(s, "*") {
		return "", errors.New("wildcards are not allowed; list each origin, e.g. \"https://ops.example.com\"")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an origin such as \"https://ops.example.com\" (scheme://host[:port])")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "/") {
		return "", errors.New("an origin has no path, query, user or trailing slash; write scheme://host[:port]")
	}
	return strings.ToLower(s), nil
}

// checkProxyURL returns the diagnostic summary along with the error, as a
// password in a proxy URL is a secret leak rather than a typo.
func checkProxyURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return "Invalid proxy", errors.New("not an absolute URL such as \"http://proxy.example:3128\"")
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return "Invalid proxy", fmt.Errorf("scheme %q is not supported; use http, https or socks5", u.Scheme)
	}
	if _, set := u.User.Password(); set {
		return "Secret given as a literal", errors.New("the URL carries a password, which would end up in git; use a proxy that authenticates robots by address, or one without credentials")
	}
	if u.Path != "" && u.Path != "/" {
		return "Invalid proxy", errors.New("a proxy URL has no path")
	}
	return "", nil
}

func checkIP(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return errors.New("not an IP address")
	}
	if a.Zone() != "" {
		return errors.New("an IPv6 zone is specific to one machine")
	}
	return nil
}

var hostLabelRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)

// checkHostPattern accepts what the robots' network enforcement can match:
// a host name, a wildcard for its subdomains, an address, a CIDR, or "*".
func checkHostPattern(s string) error {
	switch {
	case s == "*":
		return nil
	case strings.Contains(s, "://"):
		return errors.New("a host pattern has no scheme")
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return errors.New("not a CIDR")
		}
		if m := p.Masked(); m != p {
			return fmt.Errorf("host bits are set (did you mean %q?)", m.String())
		}
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return checkIP(s)
	}
	if strings.Contains(s, ":") {
		return errors.New("a host pattern has no port")
	}
	host := strings.TrimPrefix(s, "*.")
	if host == "" || len(host) > 253 {
		return errors.New("not a host name")
	}
	labels := strings.Split(host, ".")
	for _, label := range labels {
		if strings.Contains(label, "*") {
			return errors.New("'*' is allowed only as the whole first label, as in \"*.example.com\"")
		}
		if !hostLabelRE.MatchString(label) {
			return errors.New("not a host name")
		}
	}
	// No top-level domain is numeric; "10.0.0" is a mistyped address, not
	// a host.
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return errors.New("not an IP address nor a host name")
	}
	return nil
}

func checkTimezone(tz string) error {
	if tz == "Local" {
		return errors.New("\"Local\" depends on the machine the daemon runs on")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return errors.New("unknown time zone")
	}
	return nil
}

var dsnPasswordRE = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

func dsnHasPassword(dsn string) bool {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, set := u.User.Password(); set {
			return true
		}
		if u.Query().Has("password") {
			return true
		}
	}
	return dsnPasswordRE.MatchString(dsn)
}

// didYouMean suggests the closest candidate for a likely typo, in the
// words hcl itself uses for unknown arguments.
func didYouMean(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein(name, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
