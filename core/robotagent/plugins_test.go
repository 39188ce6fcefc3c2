package robotagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(removePlugins{m}) }

// builtDir is the plugin directory crawlerDir made, if a test asked for it.
var builtDir string

// removePlugins deletes the built plugin directory after the tests.
type removePlugins struct{ *testing.M }

func (m removePlugins) Run() int {
	code := m.M.Run()
	if builtDir != "" { // only when a test built the plugin
		_ = os.RemoveAll(builtDir)
	}
	return code
}

// crawlerDir builds the real HTTP crawler plugin into a plugin directory
// once per test binary, as an operator installs a plugin: the agent's
// tests run the plugin out of process without importing its code, which
// only cmd may load.
var crawlerDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "rpacloud-agent-plugins-")
	if err != nil {
		return "", err
	}
	builtDir = dir
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "rpacloud-crawler-http"),
		"github.com/rpacloud/rpacloud/plugins/crawler/http/cmd/rpacloud-crawler-http").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build the http crawler: %v\n%s", err, out)
	}
	return dir, nil
})

type specs map[string]*robotwire.ProcessSpec

func (s specs) Spec(_ context.Context, p string) (*robotwire.ProcessSpec, error) {
	if sp, ok := s[p]; ok {
		return sp, nil
	}
	return nil, errors.New("no spec")
}

func newPlugins(t *testing.T, target string) *Plugins {
	dir, err := crawlerDir()
	if err != nil {
		t.Fatal(err)
	}
	h := pluginhost.New(pluginhost.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond, StopTimeout: 5 * time.Second})
	t.Cleanup(h.Close)
	flow := &sdk.Flow{Name: "f", Steps: []sdk.Step{
		{Action: sdk.ActionRequest, URL: target + "/file", Form: map[string]string{"user": "{{credentials.etax/acme.username}}", "amount": "{{input.amount}}"}},
		{Action: sdk.ActionAssert, Regex: `error: (.*)`, State: "absent", DataError: true, Message: "refused"},
		{Action: sdk.ActionExtract, Regex: `receipt=(\w+)`, Output: "receipt"},
	}}
	return &Plugins{Host: h, Specs: specs{"filing": {Name: "filing", Kind: "crawler", Runner: "http", Flow: flow}},
		ArtifactDir: t.TempDir()}
}

func TestCrawlerTasks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/file" && r.PostFormValue("user") != "alice":
			http.Error(w, "who are you", http.StatusForbidden)
		case r.PostFormValue("amount") == "-1":
			_, _ = io.WriteString(w, "error: amount must not be negative")
		case r.PostFormValue("amount") == "hang":
			<-r.Context().Done()
		default:
			_, _ = io.WriteString(w, "receipt=R42")
		}
	}))
	defer srv.Close()
	p := newPlugins(t, srv.URL)
	ctx := secret.WithSecrets(context.Background(), secret.Secrets{"etax/acme": {Username: "alice", Password: "pw"}})
	claim := func(input string) *robotwire.Claim {
		return &robotwire.Claim{TaskID: 7, Attempt: 1, Process: "filing", Kind: "crawler", Runner: "http", Input: json.RawMessage(input)}
	}

	out, err := p.Run(ctx, claim(`{"amount":"10"}`))
	if err != nil || string(out) != `{"receipt":"R42"}` {
		t.Fatalf("success: %s %v", out, err)
	}
	_, err = p.Run(ctx, claim(`{"amount":"-1"}`))
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "refused: amount must not be negative") {
		t.Fatalf("data error: %v", err)
	}
	if !strings.Contains(err.Error(), "artefacts: "+p.ArtifactDir) {
		t.Errorf("the failing response is not kept: %v", err)
	}
	// Without credentials delivered with the claim the flow cannot run.
	_, err = p.Run(context.Background(), claim(`{"amount":"10"}`))
	if err == nil || !strings.Contains(err.Error(), `credential "etax/acme" is not available`) {
		t.Fatalf("no credentials: %v", err)
	}

	// A plugin killed mid-task: an execution error, and the next task
	// starts the plugin again.
	c, err := p.Host.Crawler(ctx, "http", nil)
	if err != nil {
		t.Fatal(err)
	}
	pid := c.PID()
	go func() {
		time.Sleep(700 * time.Millisecond)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}()
	_, err = p.Run(ctx, claim(`{"amount":"hang"}`))
	if err == nil || errors.Is(err, ErrData) || !errors.Is(err, pluginhost.ErrPluginUnavailable) {
		t.Fatalf("killed plugin: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err = p.Run(ctx, claim(`{"amount":"10"}`))
		if err == nil {
			if string(out) != `{"receipt":"R42"}` {
				t.Fatalf("after restart: %s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Old attempt directories go; fresh ones, and anything else in the
// directory, stay.
func TestPruneArtifacts(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string, age time.Duration, isDir bool) {
		p := filepath.Join(dir, name)
		if isDir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(p, "screenshot.png"), []byte("png"), 0o600); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	mk("12-1", 30*24*time.Hour, true)
	mk("12-2", 15*24*time.Hour, true)
	mk("13-1", time.Hour, true)
	mk("notes", 100*24*time.Hour, true)
	mk("99-1.txt", 100*24*time.Hour, false)
	n, err := PruneArtifacts(dir, now.Add(-DefaultArtifactRetention))
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v; want 2", n, err)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "13-1 99-1.txt notes" {
		t.Fatalf("left: %v", left)
	}
	if n, err := PruneArtifacts(filepath.Join(dir, "missing"), now); n != 0 || err != nil {
		t.Fatalf("missing directory: %d %v", n, err)
	}
}
