package daemon

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// TestCertsReload: the listener serves the pair read at start; reload
// swaps in a renewed pair for new handshakes; a pair that does not belong
// together is refused, logged with the key file's name and without the
// key, and the running certificate stays. Only HTTP/1.1 is offered.
func TestCertsReload(t *testing.T) {
	ca := sdktest.NewCA(t)
	now := time.Now()
	certFile, keyFile := ca.Issue(t, "one", "one", now.Add(-time.Hour), now.Add(time.Hour))
	copyTo := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	srv := config.Server{TLSCertFile: certFile, TLSKeyFile: keyFile}
	c, err := newCerts(srv, log)
	if err != nil {
		t.Fatal(err)
	}
	if none, err := newCerts(config.Server{}, log); none != nil || err != nil || none.reload() != nil {
		t.Fatalf("without TLS: %v %v", none, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(r.Proto)) })}
	go func() { _ = hs.Serve(c.listener(ln, srv)) }()
	defer hs.Close()
	served := func() (string, string) {
		t.Helper()
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		return st.PeerCertificates[0].Subject.CommonName, st.NegotiatedProtocol
	}
	if cn, proto := served(); cn != "one" || proto != "http/1.1" {
		t.Fatalf("served %q over %q", cn, proto)
	}

	c2, k2 := ca.Issue(t, "two", "two", now.Add(-time.Hour), now.Add(time.Hour))
	copyTo(c2, certFile)
	copyTo(k2, keyFile)
	if err := c.reload(); err != nil {
		t.Fatal(err)
	}
	if cn, _ := served(); cn != "two" {
		t.Fatalf("after reload: %q", cn)
	}

	_, k3 := ca.Issue(t, "three", "three", now.Add(-time.Hour), now.Add(time.Hour))
	copyTo(k3, keyFile)
	if err := c.reload(); err == nil {
		t.Fatal("a key of another certificate was accepted")
	}
	if cn, _ := served(); cn != "two" {
		t.Fatalf("after a bad pair: %q", cn)
	}
	logged := logBuf.String()
	if !strings.Contains(logged, "new certificate refused") || !strings.Contains(logged, keyFile) {
		t.Errorf("log:\n%s", logged)
	}
	key, _ := os.ReadFile(k3)
	if strings.Contains(logged, "PRIVATE KEY") || strings.Contains(logged, string(key[40:80])) {
		t.Error("the key reached the log")
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if err := c.reload(); err == nil || !strings.Contains(err.Error(), "certificate file "+certFile) {
		t.Errorf("missing certificate: %v", err)
	}
	if cn, _ := served(); cn != "two" {
		t.Fatalf("after a missing file: %q", cn)
	}
}
