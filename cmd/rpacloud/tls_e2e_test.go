package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// tlsServer is a running `rpacloud server` of these tests.
type tlsServer struct {
	cmd     *exec.Cmd
	exited  chan error
	logPath string
	token   string
}

// startTLSServer runs `rpacloud server --config cfgDir` (SQLite in
// dataDir) and waits until base/healthz answers through client.
func startTLSServer(t *testing.T, bin, cfgDir, dataDir, base string, client *http.Client) *tlsServer {
	t.Helper()
	s := &tlsServer{logPath: filepath.Join(t.TempDir(), "daemon.log"), exited: make(chan error, 1)}
	logf, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "server", "--config", cfgDir, "--log-format", "text")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = append(os.Environ(), "RPACLOUD_DATABASE_DSN=")
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		t.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", s.log())
		}
	})
	eventually(t, 60*time.Second, "the daemon to serve "+base+"/healthz", func() (bool, string) {
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("the daemon exited: %v\n%s", err, s.log())
		default:
		}
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	raw, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(raw))
	return s
}

func (s *tlsServer) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
	}
}

func (s *tlsServer) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// gqlPost sends one GraphQL operation with extra headers and decodes its
// data into out; GraphQL errors are returned as one error.
func gqlPost(ctx context.Context, c *http.Client, base, token, query string, vars map[string]any, hdr map[string]string, out any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if len(env.Errors) > 0 {
		return fmt.Errorf("graphql: %s", env.Errors[0].Message)
	}
	if out != nil {
		return json.Unmarshal(env.Data, out)
	}
	return nil
}

// tlsTestHCL is a daemon with an enrolled-robots pool (no provider, so no
// robot process starts) and one process, its server block completed by
// server.
func tlsTestHCL(server string) string {
	return "server {\n" + server + "}\n" + `customer "demo" {}
pool "p" {
  min = 0
  max = 1
}
process "work" {
  pool    = "p"
  builtin = "echo"
}
`
}

// submit queues one task of process work and returns the batch's ID.
func submitWork(ctx context.Context, c *http.Client, base, token string, hdr map[string]string) (string, error) {
	var out struct{ SubmitBatch struct{ ID string } }
	err := gqlPost(ctx, c, base, token, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`,
		map[string]any{"in": map[string]any{"process": "work", "customer": "demo", "inputs": []any{map[string]any{"n": 1}}}}, hdr, &out)
	return out.SubmitBatch.ID, err
}

// leafCN dials addr with TLS trusting pool and returns the served
// certificate's common name.
func leafCN(addr string, cfg *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

// TestDaemonTLS serves HTTPS from a test CA's certificate, then renews it
// in place and sends SIGHUP: new connections get the new certificate while
// an open websocket subscription and a kept-alive connection keep working;
// a bad new pair (a key of another certificate) is refused with the file
// named in the log and the running certificate stays. The CLI reaches the
// daemon with the private CA through SSL_CERT_FILE.
func TestDaemonTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := sdktest.RpacloudBinary(t)
	ca := sdktest.NewCA(t)
	now := time.Now()
	dir := t.TempDir()
	cfgDir, dataDir := filepath.Join(dir, "config"), filepath.Join(dir, "data")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	install := func(name, cn string, notAfter time.Time) {
		t.Helper()
		c, k := ca.Issue(t, name, cn, now.Add(-time.Hour), notAfter)
		for src, dst := range map[string]string{c: certFile, k: keyFile} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	install("one", "rpacloud-one", now.Add(time.Hour))
	addr := sdktest.FreeAddr(t)
	hcl := tlsTestHCL(fmt.Sprintf("  listen        = %q\n  data_dir      = %q\n  tls_cert_file = %q\n  tls_key_file  = %q\n", addr, dataDir, certFile, keyFile))
	if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsCfg := &tls.Config{RootCAs: ca.Pool()}
	tr := &http.Transport{TLSClientConfig: tlsCfg}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "https://" + addr
	srv := startTLSServer(t, bin, cfgDir, dataDir, base, client)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	if cn, err := leafCN(addr, tlsCfg); err != nil || cn != "rpacloud-one" {
		t.Fatalf("served certificate: %q %v", cn, err)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS port")
		}
	}
	if !strings.Contains(srv.log(), "serving on https://"+addr) {
		t.Errorf("the banner does not name the https URL:\n%s", srv.log())
	}

	// The CLI with the private CA: SSL_CERT_FILE (Go's roots on Linux);
	// without it the certificate is refused.
	cli := func(env ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, "task", "list", "--server", base)
		cmd.Env = append(os.Environ(), append([]string{"RPACLOUD_TOKEN=" + srv.token, "SSL_CERT_DIR=" + t.TempDir()}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli("SSL_CERT_FILE=" + ca.File); err != nil {
		t.Fatalf("rpacloud task list with SSL_CERT_FILE: %v\n%s", err, out)
	}
	if out, err := cli("SSL_CERT_FILE=" + filepath.Join(t.TempDir(), "none.pem")); err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("rpacloud task list without the CA: %v\n%s", err, out)
	}

	// A subscription over wss and a kept-alive connection, open across
	// the renewals.
	wsd := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second, TLSClientConfig: tlsCfg}
	sub := subscribeWith(t, ctx, wsd, "wss://"+addr+"/graphql", srv.token, nil)
	defer sub.close()
	keep := &http.Transport{TLSClientConfig: tlsCfg, MaxConnsPerHost: 1}
	defer keep.CloseIdleConnections()
	keepClient := &http.Client{Transport: keep, Timeout: 30 * time.Second}
	if _, err := submitWork(ctx, keepClient, base, srv.token, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the first task's event on the subscription", func() (bool, string) {
		return sub.total() >= 1, fmt.Sprint(sub.total())
	})

	install("two", "rpacloud-two", now.Add(2*time.Hour))
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the renewed certificate to be served", func() (bool, string) {
		cn, err := leafCN(addr, tlsCfg)
		return cn == "rpacloud-two", fmt.Sprint(cn, err)
	})
	if !strings.Contains(srv.log(), "tls: certificate reloaded") {
		t.Errorf("no reload in the log:\n%s", srv.log())
	}
	// The connections opened before still work.
	before := sub.total()
	if _, err := submitWork(ctx, keepClient, base, srv.token, nil); err != nil {
		t.Fatalf("the kept-alive connection after the renewal: %v", err)
	}
	eventually(t, 20*time.Second, "an event on the subscription opened before the renewal", func() (bool, string) {
		return sub.total() > before, fmt.Sprint(sub.total())
	})

	// A bad pair: the key of another certificate.
	_, otherKey := ca.Issue(t, "three", "rpacloud-three", now.Add(-time.Hour), now.Add(time.Hour))
	b, err := os.ReadFile(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	c3, _ := ca.Issue(t, "four", "rpacloud-four", now.Add(-time.Hour), now.Add(time.Hour))
	cb, err := os.ReadFile(c3)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, cb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the bad pair's refusal in the log", func() (bool, string) {
		return strings.Contains(srv.log(), "new certificate refused"), ""
	})
	log := srv.log()
	if !strings.Contains(log, "key file "+keyFile) || !strings.Contains(log, "private key does not match public key") {
		t.Errorf("the refusal does not name the key file and the reason:\n%s", log)
	}
	if cn, err := leafCN(addr, tlsCfg); err != nil || cn != "rpacloud-two" {
		t.Errorf("after a bad pair the running certificate must stay: %q %v", cn, err)
	}
	if _, err := submitWork(ctx, client, base, srv.token, nil); err != nil {
		t.Errorf("serving after a bad pair: %v", err)
	}
	if strings.Contains(log, "PRIVATE KEY") || strings.Contains(log, string(b[40:80])) {
		t.Error("a private key reached the log")
	}
}

// nginxBinary is Debian's nginx (.ci/services.sh installs it), or the
// test is skipped unless RPACLOUD_REQUIRE_NGINX=1.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RPACLOUD_NGINX"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("RPACLOUD_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found ($RPACLOUD_NGINX, PATH, /usr/sbin/nginx) and RPACLOUD_REQUIRE_NGINX=1")
	}
	t.Skip("nginx not installed (bash .ci/services.sh installs it)")
	return ""
}

// substitute replaces each old of pairs in s, failing when one is not
// there exactly once: the shipped file changed and the test must follow.
func substitute(t *testing.T, s string, pairs ...string) string {
	t.Helper()
	for i := 0; i < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("deploy/nginx/rpacloud.conf: %q appears %d times, want once", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// startNginx runs nginx in the foreground from prefix with the shipped
// deploy/nginx/rpacloud.conf, its ports, upstream and certificate
// substituted, as an unprivileged user when the test runs as root.
func startNginx(t *testing.T, upstream, httpsAddr, httpAddr, certFile, keyFile string) {
	t.Helper()
	nginx := nginxBinary(t)
	prefix, err := os.MkdirTemp("", "rpacloud-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(prefix) })
	shipped, err := os.ReadFile("../../deploy/nginx/rpacloud.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := substitute(t, string(shipped),
		"server 127.0.0.1:8080;", "server "+upstream+";",
		"listen 80;\n    listen [::]:80;", "listen "+httpAddr+";",
		"listen 443 ssl http2;\n    listen [::]:443 ssl http2;", "listen "+httpsAddr+" ssl http2;",
		"/etc/ssl/rpacloud/fullchain.pem", filepath.Join(prefix, "tls.crt"),
		"/etc/ssl/rpacloud/privkey.pem", filepath.Join(prefix, "tls.key"),
	)
	main := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 128; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    include %[1]s/rpacloud.conf;
}
`, prefix)
	files := map[string]string{"rpacloud.conf": conf, "nginx.conf": main}
	for src, dst := range map[string]string{certFile: "tls.crt", keyFile: "tls.key"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		files[dst] = string(b)
	}
	if err := os.Mkdir(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(prefix, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// nginx as root would keep a root master; run it all as nobody.
		uid, gid := uint32(65534), uint32(65534)
		if u, err := user.Lookup("nobody"); err == nil {
			if n, err := strconv.Atoi(u.Uid); err == nil {
				uid = uint32(n)
			}
			if n, err := strconv.Atoi(u.Gid); err == nil {
				gid = uint32(n)
			}
		}
		cred = &syscall.Credential{Uid: uid, Gid: gid}
		_ = filepath.Walk(prefix, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Chown(p, int(uid), int(gid))
			}
			return err
		})
	}
	args := []string{"-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-e", filepath.Join(prefix, "error.log")}
	check := exec.Command(nginx, append(args, "-t")...)
	check.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, append(args, "-g", "daemon off;")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful: workers finish, then exit
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), b)
		}
	})
	eventually(t, 20*time.Second, "nginx to listen on "+httpsAddr, func() (bool, string) {
		c, err := net.DialTimeout("tcp", httpsAddr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// TestNginxProxy runs the shipped deploy/nginx/rpacloud.conf under the
// real nginx, terminating TLS in front of a real daemon, and proves
// through it: GraphQL queries and mutations, a graphql-ws subscription
// (with a browser's Origin) receiving an event, a document download with
// its bytes and headers as the daemon serves them, the redirect from
// plain HTTP, /metrics kept in; and the client address the audit trail
// records: the client's own (not one it forged in X-Forwarded-For) when
// nginx's address is in trusted_proxies, and nginx's when it is not.
func TestNginxProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	nginxBinary(t) // skip before the build when there is none
	bin := sdktest.RpacloudBinary(t)
	ca := sdktest.NewCA(t)
	certFile, keyFile := ca.Issue(t, "proxy", "rpacloud-proxy", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	daemonAddr, httpsAddr, httpAddr := sdktest.FreeAddr(t), sdktest.FreeAddr(t), sdktest.FreeAddr(t)
	front := "https://" + httpsAddr
	dir := t.TempDir()
	cfgDir, dataDir := filepath.Join(dir, "config"), filepath.Join(dir, "data")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCfg := func(trusted string) {
		t.Helper()
		server := fmt.Sprintf("  listen     = %q\n  public_url = %q\n  data_dir   = %q\n%s", daemonAddr, front, dataDir, trusted)
		if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte(tlsTestHCL(server)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("  trusted_proxies = [\"127.0.0.1/32\"]\n")
	startNginx(t, daemonAddr, httpsAddr, httpAddr, certFile, keyFile)

	// The client comes from 127.0.0.2, nginx reaches the daemon from
	// 127.0.0.1: the two addresses the audit trail can record.
	tlsCfg := &tls.Config{RootCAs: ca.Pool()}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	tr := &http.Transport{TLSClientConfig: tlsCfg, DialContext: dialer.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// The direct client comes from 127.0.0.3, a peer not in
	// trusted_proxies.
	directDialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	direct := &http.Transport{DialContext: directDialer.DialContext}
	defer direct.CloseIdleConnections()
	directClient := &http.Client{Transport: direct, Timeout: 30 * time.Second}
	srv := startTLSServer(t, bin, cfgDir, dataDir, front, client)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// A subscription through nginx, with the Origin a browser on the
	// public URL sends.
	wsd := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second,
		TLSClientConfig: tlsCfg, NetDialContext: dialer.DialContext}
	sub := subscribeWith(t, ctx, wsd, "wss://"+httpsAddr+"/graphql", srv.token, http.Header{"Origin": {front}})
	defer sub.close()

	// A mutation through nginx whose client forged X-Forwarded-For.
	if _, err := submitWork(ctx, client, front, srv.token, map[string]string{"X-Request-Id": "via-nginx-1", "X-Forwarded-For": "6.6.6.6"}); err != nil {
		t.Fatalf("mutation through nginx: %v", err)
	}
	eventually(t, 20*time.Second, "the task's event on the subscription through nginx", func() (bool, string) {
		return sub.total() >= 1, fmt.Sprint(sub.total())
	})
	// The same forgery sent to the daemon directly, from an untrusted peer.
	if _, err := submitWork(ctx, directClient, "http://"+daemonAddr, srv.token, map[string]string{"X-Request-Id": "direct-1", "X-Forwarded-For": "6.6.6.6"}); err != nil {
		t.Fatal(err)
	}
	remoteOf := func(requestID string) string {
		t.Helper()
		var out struct {
			AuditEntries struct {
				Edges []struct{ Node struct{ RemoteAddr string } }
			}
		}
		err := gqlPost(ctx, directClient, "http://"+daemonAddr, srv.token,
			`query($r:String!){auditEntries(where:{requestID:$r}){edges{node{remoteAddr}}}}`, map[string]any{"r": requestID}, nil, &out)
		if err != nil || len(out.AuditEntries.Edges) != 1 {
			t.Fatalf("audit entry of %s: %+v %v", requestID, out, err)
		}
		return out.AuditEntries.Edges[0].Node.RemoteAddr
	}
	if got := remoteOf("via-nginx-1"); got != "127.0.0.2" {
		t.Errorf("through a trusted nginx the audit trail records %q, want the client's 127.0.0.2", got)
	}
	if got := remoteOf("direct-1"); !strings.HasPrefix(got, "127.0.0.3:") {
		t.Errorf("an untrusted peer's X-Forwarded-For was believed: %q", got)
	}

	// A query and a document download through nginx: bytes and headers
	// as the daemon serves them.
	var doc struct{ DocumentURL string }
	if err := gqlPost(ctx, client, front, srv.token, `{documentURL(process:"work", kind:MANUAL, format:MD, language:"zh")}`, nil, nil, &doc); err != nil {
		t.Fatalf("query through nginx: %v", err)
	}
	if !strings.HasPrefix(doc.DocumentURL, front+"/download/") {
		t.Fatalf("the download link does not use public_url: %q", doc.DocumentURL)
	}
	get := func(c *http.Client, url string) (*http.Response, []byte) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	viaResp, viaBody := get(client, doc.DocumentURL)
	dirResp, dirBody := get(directClient, strings.Replace(doc.DocumentURL, front, "http://"+daemonAddr, 1))
	if viaResp.StatusCode != 200 || dirResp.StatusCode != 200 {
		t.Fatalf("download: %s through nginx, %s direct: %s", viaResp.Status, dirResp.Status, viaBody)
	}
	if !bytes.Equal(viaBody, dirBody) || len(viaBody) < 100 {
		t.Errorf("download: %d bytes through nginx, %d direct, not the same:\n%s", len(viaBody), len(dirBody), viaBody)
	}
	for _, h := range []string{"Content-Type", "Content-Disposition", "Cache-Control"} {
		if viaResp.Header.Get(h) != dirResp.Header.Get(h) || viaResp.Header.Get(h) == "" {
			t.Errorf("%s: %q through nginx, %q direct", h, viaResp.Header.Get(h), dirResp.Header.Get(h))
		}
	}
	// Plain HTTP is redirected to HTTPS; /metrics is not served outside.
	plain, err := client.Get("http://" + httpAddr + "/graphql")
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(plain.Header.Get("Location"), "https://") {
		t.Errorf("plain HTTP: %s %q", plain.Status, plain.Header.Get("Location"))
	}
	if resp, _ := get(client, front+"/metrics"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("/metrics through nginx: %s", resp.Status)
	}
	sub.close()

	// Without trusted_proxies the daemon records nginx's own address.
	srv.stop()
	writeCfg("")
	srv = startTLSServer(t, bin, cfgDir, dataDir, front, client)
	if _, err := submitWork(ctx, client, front, srv.token, map[string]string{"X-Request-Id": "via-nginx-2"}); err != nil {
		t.Fatal(err)
	}
	if got := remoteOf("via-nginx-2"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("through an untrusted nginx the audit trail records %q, want nginx's 127.0.0.1:port", got)
	}
}
