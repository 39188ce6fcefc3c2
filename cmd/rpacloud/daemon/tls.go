package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net"
	"sync/atomic"

	"github.com/rpacloud/rpacloud/core/config"
)

// certs is the certificate the daemon serves HTTPS with: read from the
// server block's files at start, re-read on SIGHUP and swapped atomically,
// so handshakes in flight and open connections never see half a change.
type certs struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	log               *slog.Logger
}

// newCerts reads the server block's pair, or returns nil without TLS.
func newCerts(srv config.Server, log *slog.Logger) (*certs, error) {
	if !srv.TLSOn() {
		return nil, nil
	}
	c := &certs{certFile: srv.TLSCertFile, keyFile: srv.TLSKeyFile, log: log}
	pair, err := config.LoadCertificate(c.certFile, c.keyFile)
	if err != nil {
		return nil, err
	}
	c.cur.Store(pair)
	log.Info("tls: serving certificate", leafAttrs(pair.Leaf)...)
	return c, nil
}

// reload re-reads the files. A pair that cannot be served (a file missing
// or half-written, a key of another certificate) is refused with an error
// naming the file and the running certificate stays; the key is never
// logged.
func (c *certs) reload() error {
	if c == nil {
		return nil
	}
	pair, err := config.LoadCertificate(c.certFile, c.keyFile)
	if err != nil {
		c.log.Error("tls: new certificate refused; the running certificate keeps serving", "err", err)
		return err
	}
	c.cur.Store(pair)
	c.log.Info("tls: certificate reloaded", leafAttrs(pair.Leaf)...)
	return nil
}

// listener wraps ln in TLS with the current certificate. HTTP/1.1 only:
// the GraphQL websockets upgrade an HTTP/1.1 connection, and a browser
// told of HTTP/2 may try them over it; a proxy in front can offer HTTP/2.
func (c *certs) listener(ln net.Listener, srv config.Server) net.Listener {
	return tls.NewListener(ln, &tls.Config{
		MinVersion: srv.TLSMin(),
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	})
}

// leafAttrs describes a certificate for the log: what an operator checks
// after a renewal, nothing secret.
func leafAttrs(leaf *x509.Certificate) []any {
	if leaf == nil {
		return nil
	}
	return []any{"subject", leaf.Subject.String(), "dns", leaf.DNSNames, "serial", hex.EncodeToString(leaf.SerialNumber.Bytes()), "not_after", leaf.NotAfter.UTC()}
}
