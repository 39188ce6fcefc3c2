package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// startDev runs `rpacloud dev` on dataDir until the test calls the
// returned stop, and returns the admin token it printed to admin.token.
func startDev(t *testing.T, bin, cfgDir, dataDir, addr string, args ...string) (token string, stop func()) {
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(dataDir+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"dev", "--config", cfgDir, "--data-dir", dataDir, "--listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(dataDir + ".log")
			t.Logf("daemon log:\n%s", b)
		}
	})
	eventually(t, 90*time.Second, "the daemon to serve /healthz", func() (bool, string) {
		_, code, err := getHealth("http://"+addr, "")
		return err == nil && code == 200, fmt.Sprint(code, err)
	})
	raw, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw)), stop
}

// TestDevTokenStableAcrossRestarts: `rpacloud dev` keeps its admin token
// across restarts on one data directory (a kiosk keeps working), a viewer
// token made with `rpacloud token create` survives restarts, reads and
// subscribes to the screen's data and changes nothing; --new-token
// replaces the admin token and the old one stops working.
func TestDevTokenStableAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := sdktest.RpacloudBinary(t)
	cfgDir := filepath.Join(t.TempDir(), "config")
	if err := os.Mkdir(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "rpacloud.hcl"), []byte("customer \"acme\" {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	addr := sdktest.FreeAddr(t)
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	first, stop := startDev(t, bin, cfgDir, dataDir, addr)
	if fi, err := os.Stat(filepath.Join(dataDir, "admin.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v, want mode 0600", fi, err)
	}
	// The kiosk's token, from the CLI as an operator would make it.
	out, err := exec.CommandContext(ctx, bin, "token", "create", "--name", "wall", "--role", "viewer", "--server", base, "--token", first).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	kiosk := strings.TrimSpace(string(out))
	stop()

	again, stop := startDev(t, bin, cfgDir, dataDir, addr)
	if again != first {
		t.Fatal("a restart replaced the admin token")
	}
	if err := gqlclient.New(base, first).Do(ctx, `{ me { name role } }`, nil, nil); err != nil {
		t.Fatalf("the admin token after a restart: %v", err)
	}
	viewerReadsOnly(t, ctx, base, kiosk)
	stop()

	renewed, _ := startDev(t, bin, cfgDir, dataDir, addr, "--new-token")
	if renewed == first {
		t.Fatal("--new-token kept the old token")
	}
	if err := gqlclient.New(base, renewed).Do(ctx, `{ me { name } }`, nil, nil); err != nil {
		t.Fatalf("the new admin token: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{me{name}}"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+first)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the replaced admin token: HTTP %d, want 401", resp.StatusCode)
	}
	// The kiosk's token is not the admin token: it survives that too.
	viewerReadsOnly(t, ctx, base, kiosk)
}

// viewerReadsOnly checks that token reads the screen's data, over HTTP and
// on the websocket, and that every mutation is refused.
func viewerReadsOnly(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	c := gqlclient.New(base, token)
	var me struct{ Me struct{ Name, Role string } }
	if err := c.Do(ctx, `{ me { name role } poolStatus { pool { name } } }`, nil, &me); err != nil || !strings.EqualFold(me.Me.Role, "viewer") {
		t.Fatalf("viewer read: %+v %v", me, err)
	}
	for _, m := range []string{
		`mutation { submitBatch(input: {process: "echo", customer: "acme", inputs: [{}]}) { id } }`,
		`mutation { createToken(input: {name: "x", role: ADMIN}) { secret } }`,
		`mutation { revokeToken(name: "admin") }`,
		`mutation { registerRobot(hostname: "h", agentVersion: "1") { pool } }`,
	} {
		err := c.Do(ctx, m, nil, nil)
		var ge gqlclient.Errors
		if !errors.As(err, &ge) || !ge.HasCode("FORBIDDEN") {
			t.Errorf("viewer %s: %v, want FORBIDDEN", m, err)
		}
	}
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	resp.Body.Close()
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_ = conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + token}})
	_ = conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription { dashboard { at tasksByState { key count } } }"}})
	for {
		var msg struct {
			Type    string         `json:"type"`
			Payload map[string]any `json:"payload"`
		}
		if err := conn.ReadJSON(&msg); err != nil {
			t.Fatalf("viewer subscription: %v", err)
		}
		if msg.Type == "next" {
			if msg.Payload["errors"] != nil {
				t.Fatalf("viewer subscription: %v", msg.Payload)
			}
			return
		}
		if msg.Type != "connection_ack" && msg.Type != "ping" {
			t.Fatalf("viewer subscription: %s %v", msg.Type, msg.Payload)
		}
	}
}
