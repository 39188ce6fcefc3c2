package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// TLS versions the server block's tls_min_version accepts, by their HCL
// spelling. Nothing older than 1.2: every supported client speaks it.
var TLSVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// DefaultTLSMinVersion is tls_min_version when omitted.
const DefaultTLSMinVersion = "1.2"

// maxPEMBytes bounds a certificate or key file: a chain of a few
// certificates is a few kilobytes; a mistaken path (a log, a disk image)
// is not read into memory.
const maxPEMBytes = 1 << 20

// TLSOn reports whether the daemon serves HTTPS itself.
func (s Server) TLSOn() bool { return s.TLSCertFile != "" }

// TLSMin is the lowest TLS version the daemon accepts (tls.VersionTLS12
// unless tls_min_version says otherwise).
func (s Server) TLSMin() uint16 {
	if v, ok := TLSVersions[s.TLSMinVersion]; ok {
		return v
	}
	return TLSVersions[DefaultTLSMinVersion]
}

// CertificateError is a certificate or key file that cannot be served.
type CertificateError struct {
	File string // the file at fault
	Key  bool   // File is the key file
	Err  error
}

func (e *CertificateError) Error() string {
	what := "certificate file"
	if e.Key {
		what = "key file"
	}
	return fmt.Sprintf("%s %s: %v", what, e.File, e.Err)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// LoadCertificate reads a PEM certificate chain and its private key, as
// the daemon serves them, and checks that they belong together. Errors
// (*CertificateError) name the file at fault; they never carry the key's
// bytes. Relative paths are relative to the daemon's working directory,
// like data_dir.
func LoadCertificate(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := readPEM(certFile)
	if err != nil {
		return nil, &CertificateError{File: certFile, Err: err}
	}
	keyPEM, err := readPEM(keyFile)
	if err != nil {
		return nil, &CertificateError{File: keyFile, Key: true, Err: err}
	}
	// The certificate alone first, so a bad certificate file is not
	// reported as a key that does not match it.
	rest := certPEM
	var block *pem.Block
	for {
		block, rest = pem.Decode(rest)
		if block == nil || block.Type == "CERTIFICATE" {
			break
		}
	}
	if block == nil {
		return nil, &CertificateError{File: certFile, Err: errors.New("no PEM \"CERTIFICATE\" block")}
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, &CertificateError{File: certFile, Err: err}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages name the problem ("private key does not
		// match public key", "failed to find any PEM data in key
		// input") and never the key's content.
		return nil, &CertificateError{File: keyFile, Key: true, Err: fmt.Errorf("%w (certificate %s)", err, certFile)}
	}
	return &pair, nil
}

// readPEM reads a regular file of at most maxPEMBytes; its errors name
// the path.
func readPEM(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, pe.Err // the caller names the file
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMBytes {
		return nil, fmt.Errorf("over the limit of %d bytes for a PEM file", maxPEMBytes)
	}
	return b, nil
}

// decodeTLS reads tls_cert_file, tls_key_file and tls_min_version. Both
// files or neither; when the configuration comes from the daemon's own
// files they are read and checked now, so `rpacloud validate` and a start
// refuse a missing file or a key of another certificate at the attribute,
// and warn of a certificate outside its validity.
func (l *loader) decodeTLS(a attrs, s *Server) {
	certAt := a.str("tls_cert_file", &s.TLSCertFile)
	keyAt := a.str("tls_key_file", &s.TLSKeyFile)
	if at := a.str("tls_min_version", &s.TLSMinVersion); at != nil {
		if _, ok := TLSVersions[s.TLSMinVersion]; !ok {
			a.errorf(at.Expr.Range(), "Invalid tls_min_version", "tls_min_version = %q; use \"1.2\" or \"1.3\".", s.TLSMinVersion)
			s.TLSMinVersion = ""
		} else if certAt == nil {
			l.diags = append(l.diags, warnAt(at.Expr.Range(), "tls_min_version without TLS",
				"tls_min_version has no effect without tls_cert_file and tls_key_file: the daemon serves plain HTTP (e.g. behind a proxy that terminates TLS)."))
		}
	}
	for _, f := range []struct {
		at   *hcl.Attribute
		name string
		val  string
	}{{certAt, "tls_cert_file", s.TLSCertFile}, {keyAt, "tls_key_file", s.TLSKeyFile}} {
		if f.at != nil && f.val == "" {
			a.errorf(f.at.Expr.Range(), "Invalid "+f.name, "%s must not be empty; omit both tls_cert_file and tls_key_file to serve plain HTTP.", f.name)
		}
	}
	if s.TLSCertFile == "" || s.TLSKeyFile == "" {
		switch {
		case certAt != nil && keyAt == nil:
			a.errorf(certAt.Expr.Range(), "Missing tls_key_file", "tls_cert_file needs tls_key_file, the certificate's private key (PEM).")
		case keyAt != nil && certAt == nil:
			a.errorf(keyAt.Expr.Range(), "Missing tls_cert_file", "tls_key_file needs tls_cert_file, the certificate chain (PEM) it belongs to.")
		}
		s.TLSCertFile, s.TLSKeyFile = "", ""
		return
	}
	if !l.fromDisk {
		// A configuration sent through the API never changes the
		// server block (it needs a restart) and may not read the
		// daemon's files; the daemon checked its own at start.
		return
	}
	pair, err := LoadCertificate(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		rng := certAt.Expr.Range()
		var ce *CertificateError
		if errors.As(err, &ce) && ce.Key {
			rng = keyAt.Expr.Range()
		}
		if errors.Is(err, os.ErrPermission) {
			// `config plan` and `validate` often run as an operator
			// who may not read the daemon's key (mode 0600, the
			// daemon's user); the daemon reads it at start and refuses
			// to start without it.
			l.diags = append(l.diags, warnAt(rng, "TLS files not checked",
				fmt.Sprintf("%s; this user cannot read it, so the pair was not checked here. The daemon's user must be able to: it reads the files at start and on SIGHUP.", err)))
			return
		}
		a.errorf(rng, "Invalid TLS certificate", "%s.", err)
		return
	}
	if d := validityWarning(pair.Leaf, time.Now()); d != "" {
		l.diags = append(l.diags, warnAt(certAt.Expr.Range(), "TLS certificate not valid now", d))
	}
}

// validityWarning says why leaf is not valid at now, "" when it is.
func validityWarning(leaf *x509.Certificate, now time.Time) string {
	if leaf == nil {
		return ""
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Sprintf("The certificate (subject %q) expired on %s; clients will refuse it until it is renewed (replace the files and send SIGHUP).", leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("The certificate (subject %q) is not valid before %s; clients will refuse it until then.", leaf.Subject.CommonName, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

// decodeTrustedProxies reads trusted_proxies: the networks whose
// X-Forwarded-For and X-Real-IP the daemon believes.
func (l *loader) decodeTrustedProxies(a attrs, s *Server) {
	var raw []string
	_, ranges := a.strs("trusted_proxies", &raw)
	if ranges == nil {
		return
	}
	s.TrustedProxies = nil
	for i, v := range raw {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			hint := ""
			if _, aerr := netip.ParseAddr(v); aerr == nil {
				hint = fmt.Sprintf(" (one address is written %q)", v+"/32")
				if addr, _ := netip.ParseAddr(v); addr.Is6() {
					hint = fmt.Sprintf(" (one address is written %q)", v+"/128")
				}
			}
			a.errorf(ranges[i], "Invalid trusted_proxies entry", "trusted_proxies[%d] = %q is not a network in CIDR notation such as \"10.0.0.0/8\"%s.", i, v, hint)
			continue
		}
		if p != p.Masked() {
			a.errorf(ranges[i], "Invalid trusted_proxies entry", "trusted_proxies[%d] = %q has host bits set; the network is %q.", i, v, p.Masked().String())
			continue
		}
		if p.Bits() == 0 {
			// Every peer trusted: any client names any address in the
			// audit trail and escapes the per-address enrolment limit.
			l.diags = append(l.diags, warnAt(ranges[i], "Every address trusted as a proxy",
				fmt.Sprintf("trusted_proxies[%d] = %q trusts X-Forwarded-For from every client, so any client can write any address into the audit trail; list only your proxies' networks.", i, v)))
		}
		s.TrustedProxies = append(s.TrustedProxies, p.String())
	}
}
