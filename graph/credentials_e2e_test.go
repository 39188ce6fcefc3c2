package graph_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/layout"
	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/gqlclient"
	"github.com/rpacloud/rpacloud/core/robotagent"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/attempt"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/graph"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// syncBuf is a log sink many goroutines write to.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// teeWriter keeps a copy of every API response body.
type teeWriter struct {
	http.ResponseWriter
	buf *syncBuf
}

func (w teeWriter) Write(p []byte) (int, error) {
	_, _ = w.buf.Write(p)
	return w.ResponseWriter.Write(p)
}

func (w teeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// portal is a fake tax-bureau portal: HTTP basic auth against the
// passwords it accepts (a real portal accepts one; during a rotation the
// old session keeps working, hence a set).
type portal struct {
	srv      *httptest.Server
	mu       sync.Mutex
	accepted map[string]bool
	seen     map[string]int // password → logins
}

func newPortal(t *testing.T, user string) *portal {
	p := &portal{accepted: map[string]bool{}, seen: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		p.mu.Lock()
		good := ok && u == user && p.accepted[pw]
		if good {
			p.seen[pw]++
		}
		p.mu.Unlock()
		if !good {
			http.Error(w, "login refused", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"filed":true}`)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *portal) accept(pw string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted[pw] = true
}

func (p *portal) logins(pw string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[pw]
}

// portalRunner files a return on the portal with the credential its
// process binds as "etax/acme", like a crawler plugin would.
type portalRunner struct{ url string }

func (r portalRunner) Run(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
	var in struct {
		SleepMS int `json:"sleep_ms"`
	}
	_ = json.Unmarshal(input, &in)
	sec, ok := secret.SecretsFrom(ctx)["etax/acme"]
	if !ok {
		return nil, errors.New("no etax/acme credential delivered")
	}
	if in.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(in.SleepMS) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url, nil)
	req.SetBasicAuth(sec.Username, sec.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("portal refused the login of %s (HTTP %d)", sec.Username, resp.StatusCode)
	}
	return json.RawMessage(`{"filed":true}`), nil
}

type e2e struct {
	t        *testing.T
	db       *store.DB
	dbPath   string
	svc      *credentials.Service
	queue    *dispatch.Queue
	srv      *httptest.Server
	logs     *syncBuf
	api      *syncBuf
	errs     []string
	admin    *gqlclient.Client
	finance  *gqlclient.Client
	hr       *gqlclient.Client
	robotTok func(name string) *gqlclient.Client
}

func newE2E(t *testing.T, v *vaulttest.Vault, mount string) *e2e {
	t.Helper()
	ctx := context.Background()
	e := &e2e{t: t, logs: &syncBuf{}, api: &syncBuf{}}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.dbPath = filepath.Join(t.TempDir(), "rpacloud.db")
	db, err := store.Open(ctx, store.SQLite, e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	sys := privacy.DecisionContext(ctx, privacy.Allow)
	acme := db.Customer.Create().SetName("acme").SaveX(sys)
	fin := db.Customer.Create().SetName("acme-finance").SetKind("department").SetParentID(acme.ID).SaveX(sys)
	hr := db.Customer.Create().SetName("acme-hr").SetKind("department").SetParentID(acme.ID).SaveX(sys)
	pl := db.Pool.Create().SetName("tax").SetProvider("local").SaveX(sys)
	db.Process.Create().SetName("vat-filing").SetPoolID(pl.ID).SetOwnerID(fin.ID).SetRunner("portal").SetRetries(1).SaveX(sys)
	db.Process.Create().SetName("quick-filing").SetPoolID(pl.ID).SetOwnerID(fin.ID).SetRunner("portal").SetMaxDurationSeconds(1).SaveX(sys)
	db.Process.Create().SetName("payroll").SetPoolID(pl.ID).SetOwnerID(hr.ID).SetRunner("portal").SetRetries(1).SaveX(sys)
	cfg := &config.Config{Processes: []config.Process{
		{Name: "vat-filing", Credentials: []string{"etax/acme"}},
		{Name: "quick-filing", Credentials: []string{"etax/acme"}},
	}}

	svc, err := credentials.New(credentials.Options{
		Vault:  &config.Vault{Address: v.Addr, AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, v.Token), Mount: mount, Prefix: "rpacloud"},
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Login(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	bus := events.New()
	e.queue = dispatch.New(db.Client, dispatch.Options{Bus: bus, Logger: log})
	res := &graph.Resolver{Client: db.Client, Queue: e.queue, Bus: bus, Vault: svc, CredentialBindings: credentials.NewBindings(db.Client, cfg)}
	h := auth.Middleware(db.Client, graph.NewHandler(res, graph.HandlerOptions{Logger: log}))
	base, cancel := context.WithCancel(ctx)
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(teeWriter{w, e.api}, r)
	}))
	e.srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	e.srv.Start()
	var wg sync.WaitGroup
	wg.Go(func() { svc.FollowAttempts(base, bus) })
	t.Cleanup(func() { cancel(); e.srv.Close(); wg.Wait(); svc.Close() })

	issue := func(name string, role viewer.Role, cust, rb *int) *gqlclient.Client {
		s, err := auth.Issue(ctx, db.Client, auth.IssueRequest{Name: name, Role: role, CustomerID: cust, RobotID: rb})
		if err != nil {
			t.Fatal(err)
		}
		return gqlclient.New(e.srv.URL, s)
	}
	e.admin = issue("admin", viewer.Admin, nil, nil)
	e.finance = issue("finance-op", viewer.Operator, &fin.ID, nil)
	e.hr = issue("hr-op", viewer.Operator, &hr.ID, nil)
	e.robotTok = func(name string) *gqlclient.Client {
		rb := db.Robot.Create().SetName(name).SetPoolID(pl.ID).SaveX(sys)
		return issue("robot/"+name, viewer.Robot, nil, &rb.ID)
	}
	return e
}

// do runs a GraphQL call and keeps its error text for the canary scan.
func (e *e2e) do(c *gqlclient.Client, q string, vars map[string]any, out any) error {
	err := c.Do(context.Background(), q, vars, out)
	if err != nil {
		e.errs = append(e.errs, err.Error())
	}
	return err
}

func (e *e2e) must(c *gqlclient.Client, q string, vars map[string]any, out any) {
	e.t.Helper()
	if err := e.do(c, q, vars, out); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

func (e *e2e) submit(process string, inputs ...string) int {
	e.t.Helper()
	return e.submitFor("acme-finance", process, inputs...)
}

func (e *e2e) submitFor(customer, process string, inputs ...string) int {
	e.t.Helper()
	var out struct {
		SubmitBatch struct {
			ID string `json:"id"`
		} `json:"submitBatch"`
	}
	js := make([]any, len(inputs))
	for i, in := range inputs {
		js[i] = json.RawMessage(in)
	}
	e.must(e.admin, `mutation($in:SubmitBatchInput!){submitBatch(input:$in){id}}`,
		map[string]any{"in": map[string]any{"process": process, "customer": customer, "inputs": js}}, &out)
	var id int
	_, _ = fmt.Sscan(out.SubmitBatch.ID, &id)
	return id
}

func (e *e2e) waitFinished(timeout time.Duration) []*ent.Task {
	e.t.Helper()
	sys := privacy.DecisionContext(context.Background(), privacy.Allow)
	deadline := time.Now().Add(timeout)
	for {
		open, err := e.db.Task.Query().Where(task.StateIn(task.StatePending, task.StateRunning)).Count(sys)
		if err != nil {
			e.t.Fatal(err)
		}
		if open == 0 {
			return e.db.Task.Query().AllX(sys)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d tasks still open after %s", open, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func canary(tag string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "CANARY-" + tag + "-" + hex.EncodeToString(b)
}

// TestCanaryEndToEnd onboards a unique secret through the API, runs tasks
// that log into a portal with it through real robots agents and a real
// Vault (rotating it while tasks run), exercises the failure paths, and
// then searches the database files, every log line, every API response and
// every error for it: there must be no hit.
func TestCanaryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with a real Vault")
	}
	t.Parallel()
	v := vaulttest.Shared(t)
	e := newE2E(t, v, v.NewMount(t))
	pw1, pw2, seed, pin := canary("pw1"), canary("pw2"), canary("totp"), canary("pin")
	canaries := []string{pw1, pw2, seed, pin}
	p := newPortal(t, "acme-001")
	p.accept(pw1)

	// Onboarding by the Finance department's operator: write-only.
	var put struct {
		PutCredential struct {
			Name      string   `json:"name"`
			Version   int      `json:"version"`
			Fields    []string `json:"fields"`
			Processes []string `json:"processes"`
		} `json:"putCredential"`
	}
	e.must(e.finance, `mutation($in:CredentialInput!){putCredential(input:$in){name version fields processes}}`,
		map[string]any{"in": map[string]any{"name": "etax/acme", "username": "acme-001", "password": pw1, "totpSeed": seed,
			"fields": []map[string]string{{"name": "pin", "value": pin}}}}, &put)
	if c := put.PutCredential; c.Version != 1 || strings.Join(c.Fields, ",") != "password,pin,totp_seed,username" ||
		strings.Join(c.Processes, ",") != "quick-filing,vat-filing" {
		t.Fatalf("putCredential = %+v", c)
	}
	// A second put of the same name is refused (rotate is explicit).
	if err := e.do(e.finance, `mutation($in:CredentialInput!){putCredential(input:$in){name}}`,
		map[string]any{"in": map[string]any{"name": "etax/acme", "password": pw1}}, nil); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second put: %v", err)
	}
	// A wrongly typed secret: gqlgen must not echo the value back
	// (gqlcheck:invalid).
	_ = e.do(e.finance, `mutation{putCredential(input:{name:"x", password: 12345`+"}){name}}", nil, nil)
	_ = e.do(e.finance, `mutation($in:CredentialInput!){putCredential(input:$in){name}}`,
		map[string]any{"in": map[string]any{"name": "etax/bad", "password": []int{1}, "username": pin}}, nil)
	_ = e.do(e.finance, `mutation($in:CredentialInput!){putCredential(input:$in){name}}`,
		map[string]any{"in": map[string]any{"name": "../acme-hr/x", "password": pw1}}, nil)
	_ = e.do(e.finance, `mutation($in:CredentialInput!){putCredential(input:$in){name}}`,
		map[string]any{"in": map[string]any{"name": "etax/toolong", "password": pw1, "fields": []map[string]string{{"name": "Bad Name", "value": pin}}}}, nil)

	// Another department can neither see nor touch Finance's credential,
	// nor bind its own to Finance's processes.
	for _, q := range []string{
		`{credential(customer:"acme-finance", name:"etax/acme"){name}}`,
		`{credentials(customer:"acme-finance"){name}}`,
		`mutation{deleteCredential(customer:"acme-finance", name:"etax/acme")}`,
		`mutation{rotateCredential(input:{customer:"acme-finance", name:"etax/acme", password:"x"}){name}}`,
	} {
		err := e.do(e.hr, q, nil, nil)
		var ge gqlclient.Errors
		if !errors.As(err, &ge) || !ge.HasCode("FORBIDDEN") {
			t.Errorf("HR: %s: err = %v, want FORBIDDEN", q, err)
		}
	}
	e.must(e.hr, `mutation{putCredential(input:{name:"etax/acme", username:"hr", password:"hr-pw"}){name}}`, nil, nil)
	if err := e.do(e.hr, `mutation{bindCredential(name:"etax/acme", process:"vat-filing"){name}}`, nil, nil); err == nil {
		t.Error("HR bound its credential to Finance's process")
	}
	var hrBound struct {
		BindCredential struct {
			Processes []string `json:"processes"`
		} `json:"bindCredential"`
	}
	e.must(e.hr, `mutation{bindCredential(name:"etax/acme", process:"payroll"){processes}}`, nil, &hrBound)
	if strings.Join(hrBound.BindCredential.Processes, ",") != "payroll" {
		t.Errorf("HR binding = %v", hrBound.BindCredential.Processes)
	}
	var listed struct {
		Credentials []struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
		} `json:"credentials"`
	}
	e.must(e.finance, `{credentials{name version customer createdAt updatedAt updatedBy fields processes}}`, nil, &listed)
	if len(listed.Credentials) != 1 || listed.Credentials[0].Name != "etax/acme" {
		t.Errorf("finance list = %+v", listed)
	}

	// Delivery: robots run tasks that log into the portal.
	ctx, stop := context.WithCancel(context.Background())
	var robots sync.WaitGroup
	robotLog := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for i := range 2 {
		a := &robotagent.Agent{Client: e.robotTok(fmt.Sprintf("r%d", i)), Log: robotLog, PollWait: time.Second,
			Runners: map[string]robotagent.Runner{"portal": portalRunner{url: p.srv.URL}}}
		robots.Go(func() { _ = a.Run(ctx) })
	}
	defer func() { stop(); robots.Wait() }()
	const n = 6
	in := make([]string, n)
	for i := range in {
		in[i] = `{"period":"2026-10"}`
	}
	e.submit("vat-filing", in...)
	for _, tk := range e.waitFinished(30 * time.Second) {
		if tk.State != task.StateSucceeded {
			t.Errorf("task %d: %s (%s)", tk.ID, tk.State, tk.ErrorMessage)
		}
	}
	if got := p.logins(pw1); got != n {
		t.Errorf("portal saw %d logins with the credential, want %d", got, n)
	}

	// Rotation while tasks run: slow tasks started before the rotation
	// finish with the version they were given, later ones get the new one.
	p.accept(pw2)
	slow := make([]string, 4)
	for i := range slow {
		slow[i] = `{"sleep_ms":1500}`
	}
	e.submit("vat-filing", slow...)
	time.Sleep(500 * time.Millisecond) // both robots hold a v1 grant now
	e.must(e.finance, `mutation($in:CredentialInput!){rotateCredential(input:$in){version}}`,
		map[string]any{"in": map[string]any{"name": "etax/acme", "username": "acme-001", "password": pw2}}, nil)
	for _, tk := range e.waitFinished(30 * time.Second) {
		if tk.State != task.StateSucceeded {
			t.Errorf("task %d after rotation: %s (%s)", tk.ID, tk.State, tk.ErrorMessage)
		}
	}
	if p.logins(pw1) < n+1 || p.logins(pw2) < 1 {
		t.Errorf("logins v1=%d v2=%d: want running tasks on v1 and later ones on v2", p.logins(pw1), p.logins(pw2))
	}
	// Grants end on the attempts' end events, which the credential service
	// reads from the bus after the report has committed: wait for them
	// rather than reading the count at the instant the last task finished
	// (a loaded machine saw one still in flight).
	sdktest.Eventually(t, 10*time.Second, "every grant ended with its attempt", func() bool { return e.svc.Outstanding() == 0 })
	stop()
	robots.Wait()

	// A grant ends with its attempt: reported, or timed out.
	bot := e.robotTok("manual")
	claim := func() (int, int, *robotwire.Grant) {
		t.Helper()
		var out struct {
			ClaimTask *struct {
				TaskID      string           `json:"taskID"`
				Attempt     int              `json:"attempt"`
				Credentials *robotwire.Grant `json:"credentials"`
			} `json:"claimTask"`
		}
		e.must(bot, `mutation{claimTask(wait:5){taskID attempt credentials{vaultAddress expiresAt items{name path wrappingToken}}}}`, nil, &out)
		if out.ClaimTask == nil || out.ClaimTask.Credentials == nil {
			t.Fatalf("claim without a grant: %+v", out.ClaimTask)
		}
		var id int
		_, _ = fmt.Sscan(out.ClaimTask.TaskID, &id)
		return id, out.ClaimTask.Attempt, out.ClaimTask.Credentials
	}
	e.submit("vat-filing", `{}`)
	id, att, g := claim()
	if len(g.Items) != 1 || g.Items[0].Name != "etax/acme" || time.Until(g.ExpiresAt) > 11*time.Minute {
		t.Errorf("grant = %+v", g)
	}
	e.must(bot, `mutation($in:ReportResultInput!){reportResult(input:$in)}`,
		map[string]any{"in": map[string]any{"taskID": id, "attempt": att, "success": true}}, nil)
	sdktest.Eventually(t, 10*time.Second, "condition", func() bool { return e.svc.Outstanding() == 0 })
	if _, err := secret.Redeem(context.Background(), g); !errors.Is(err, secret.ErrExpired) {
		t.Errorf("grant after the attempt was reported: err = %v, want secret.ErrExpired", err)
	} else {
		e.errs = append(e.errs, err.Error())
	}
	e.submit("quick-filing", `{}`)
	_, _, g = claim()
	time.Sleep(1100 * time.Millisecond)
	if n, err := e.queue.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v", n, err)
	}
	sdktest.Eventually(t, 10*time.Second, "condition", func() bool { return e.svc.Outstanding() == 0 })
	if _, err := secret.Redeem(context.Background(), g); !errors.Is(err, secret.ErrExpired) {
		t.Errorf("grant after the attempt timed out: err = %v, want secret.ErrExpired", err)
	} else {
		e.errs = append(e.errs, err.Error())
	}

	// A credential Vault cannot deliver fails the attempt as an execution
	// error naming it; the task is retried per its process's policy.
	sys := privacy.DecisionContext(context.Background(), privacy.Allow)
	if err := e.svc.Delete(context.Background(), layout.Ref{Customer: "acme-hr", Name: "etax/acme"}); err != nil { // gone from Vault, still bound
		t.Fatal(err)
	}
	e.submitFor("acme-hr", "payroll", `{}`)
	for range 2 { // retries = 1: two attempts, then the task fails
		var out struct {
			ClaimTask *struct {
				TaskID string `json:"taskID"`
			} `json:"claimTask"`
		}
		e.must(bot, `mutation{claimTask(wait:1){taskID}}`, nil, &out)
		if out.ClaimTask != nil {
			t.Fatalf("a claim was handed out although its credential is missing")
		}
	}
	failed := e.db.Attempt.Query().Where(attempt.StateEQ(attempt.StateFailed), attempt.ErrorClassEQ(attempt.ErrorClassExecution)).AllX(sys)
	if len(failed) != 2 {
		t.Fatalf("%d failed execution attempts, want 2", len(failed))
	}
	for _, a := range failed {
		if !strings.Contains(a.ErrorMessage, `credential "etax/acme"`) || !strings.Contains(a.ErrorMessage, "not found") {
			t.Errorf("attempt error %q does not name the credential and the cause", a.ErrorMessage)
		}
	}
	if tk := e.db.Task.Query().Where(task.StateEQ(task.StateFailed)).OnlyX(sys); tk.FailureReason == nil || *tk.FailureReason != task.FailureReasonRetriesExhausted {
		t.Errorf("task after failed deliveries: %s %v", tk.State, tk.FailureReason)
	}

	// The audit trail holds the onboarding and the rotations (the scan
	// below reads it with the rest of the database file).
	if n := e.db.AuditEntry.Query().Where(auditentry.ActionIn("putCredential", "rotateCredential")).CountX(sys); n < 3 {
		t.Fatalf("%d audit entries of credential writes, want at least 3", n)
	}
	// The canary scan.
	e.db.Close()
	var where []string
	files, _ := filepath.Glob(e.dbPath + "*")
	if len(files) == 0 {
		t.Fatal("no database file to scan")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range canaries {
			if bytes.Contains(b, []byte(c)) {
				where = append(where, "database file "+filepath.Base(f))
			}
		}
	}
	scan := map[string]string{"logs": e.logs.String(), "API responses": e.api.String(), "errors": strings.Join(e.errs, "\n")}
	for what, text := range scan {
		for _, c := range canaries {
			if strings.Contains(text, c) {
				where = append(where, what)
			}
		}
	}
	if len(where) > 0 {
		t.Fatalf("canary found in: %s", strings.Join(where, ", "))
	}
	if len(e.errs) < 5 || e.api.String() == "" || e.logs.String() == "" {
		t.Fatalf("the scan looked at too little: %d errors, %d bytes of responses, %d bytes of logs", len(e.errs), len(e.api.String()), len(e.logs.String()))
	}
	t.Logf("canary: 0 hits in %d database files, %d bytes of logs, %d bytes of API responses, %d errors", len(files), len(e.logs.String()), len(e.api.String()), len(e.errs))
}
