package enrol_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/enrol"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotapi"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/auditentry"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/remoteendpoint"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/vm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const hcl = `
customer "acme" {}
pool "onprem" {
  min = 1
  max = 3
}
pool "small" {
  max = 1
}
process "echo" {
  pool    = "onprem"
  builtin = "echo"
}
`

func sys() context.Context { return privacy.DecisionContext(context.Background(), privacy.Allow) }

type fixture struct {
	svc  *enrol.Service
	db   *store.DB
	bus  *events.Bus
	logs *bytes.Buffer
	now  time.Time
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	cfg, diags, _ := config.LoadSources(map[string][]byte{"a.hcl": []byte(hcl)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := store.SyncConfig(sys(), db.Client, cfg); err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, bus: events.New(), logs: &bytes.Buffer{}, now: time.Now().UTC()}
	f.svc = &enrol.Service{Client: db.Client, Bus: f.bus, Log: slog.New(slog.NewTextHandler(f.logs, nil)),
		Now: func() time.Time { return f.now }}
	return f
}

func (f *fixture) token(t *testing.T, pool string, ttl time.Duration, uses int) (*ent.JoinToken, string) {
	t.Helper()
	jt, secret, err := f.svc.CreateJoinToken(context.Background(), pool, ttl, uses, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return jt, secret
}

func req(join, name string) robotwire.EnrolRequest {
	return robotwire.EnrolRequest{JoinToken: join, Name: name, Hostname: name + ".corp.example", OS: "linux/amd64",
		Addresses: []string{"10.0.0.7", "fd00::7"}}
}

// An enrolment makes a permanent, enrolled robot on an enrolled machine
// with the reported endpoint, a robot token bound to that robot, one use
// of the join token and a robot.enrolled event.
func TestEnrolMakesTheRobotIdentity(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	sub := f.bus.Subscribe(t.Context(), events.Filter{Types: map[events.Type]bool{events.RobotEnrolled: true}})
	jt, join := f.token(t, "onprem", time.Hour, 2)
	in := req(join, "win-01")
	in.RemoteAccess = &robotwire.RemoteAccess{Protocol: "rdp", Host: "10.0.0.7", Port: 3389, Username: "robot"}
	resp, err := f.svc.Enrol(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Robot != "win-01" || resp.Pool != "onprem" || !strings.HasPrefix(resp.Token, "rpc_") {
		t.Fatalf("identity %+v", resp)
	}
	rb := f.db.Robot.Query().Where(robot.Name("win-01")).WithVM().OnlyX(sys())
	v := rb.Edges.VM
	if !rb.Enrolled || !rb.Permanent || v == nil || !v.Enrolled || !v.Permanent || v.Provider != "" || v.State != vm.StateRunning ||
		v.Hostname != "win-01.corp.example" || v.Os != "linux/amd64" || v.Address != "10.0.0.7" || len(v.Addresses) != 2 {
		t.Fatalf("robot %+v, machine %+v", rb, v)
	}
	ep := f.db.RemoteEndpoint.Query().Where(remoteendpoint.VMID(v.ID)).OnlyX(sys())
	if ep.Protocol != "rdp" || ep.Port != 3389 || ep.Username != "robot" {
		t.Fatalf("endpoint %+v", ep)
	}
	p, err := auth.Authenticate(context.Background(), f.db.Client, resp.Token)
	if err != nil || p.Role != viewer.Robot || p.RobotID == nil || *p.RobotID != rb.ID || p.Name != "robot/win-01" {
		t.Fatalf("robot token: %+v %v", p, err)
	}
	if got := f.db.JoinToken.GetX(sys(), jt.ID).Uses; got != 1 {
		t.Fatalf("join token uses %d, want 1", got)
	}
	select {
	case ev := <-sub:
		if ev.RobotID == nil || *ev.RobotID != rb.ID {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no robot.enrolled event")
	}
}

// Every refusal names what is wrong, changes nothing, and never echoes
// the join token.
func TestRefusals(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	ctx := context.Background()
	for _, c := range []struct {
		pool string
		ttl  time.Duration
		uses int
		want string
	}{
		{"nope", time.Hour, 1, `no pool "nope"`},
		{"onprem", -time.Hour, 1, "ttl"},
		{"onprem", 31 * 24 * time.Hour, 1, "ttl"},
		{"onprem", time.Hour, 0, "uses 0"},
	} {
		_, _, err := f.svc.CreateJoinToken(ctx, c.pool, c.ttl, c.uses, "admin")
		if !errors.Is(err, enrol.ErrBadInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create %+v: %v, want bad input naming %q", c, err, c.want)
		}
	}

	_, once := f.token(t, "onprem", time.Hour, 1)
	if _, err := f.svc.Enrol(ctx, req(once, "a")); err != nil {
		t.Fatal(err)
	}
	revokedT, revoked := f.token(t, "onprem", time.Hour, 5)
	if err := f.svc.RevokeJoinToken(ctx, revokedT.ID); err != nil {
		t.Fatal(err)
	}
	_, expiring := f.token(t, "onprem", time.Minute, 5)
	_, valid := f.token(t, "onprem", time.Hour, 5)
	_, small := f.token(t, "small", time.Hour, 5)
	if _, err := f.svc.Enrol(ctx, req(small, "s1")); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(2 * time.Minute)

	for _, c := range []struct {
		what string
		in   robotwire.EnrolRequest
		is   error
		want string
	}{
		{"used up", req(once, "b"), enrol.ErrRefused, "used up (1 of 1 uses)"},
		{"revoked", req(revoked, "b"), enrol.ErrRefused, "was revoked"},
		{"expired", req(expiring, "b"), enrol.ErrRefused, "expired at"},
		{"unknown", req("rpj_nosuchtoken", "b"), enrol.ErrRefused, "not known"},
		{"name taken", req(valid, "a"), enrol.ErrConflict, `robot name "a" is already taken`},
		{"pool full", req(small, "s2"), enrol.ErrRefused, `pool "small" is full`},
		{"bad name", req(valid, "../etc"), enrol.ErrBadInput, "robot name"},
		{"bad address", robotwire.EnrolRequest{JoinToken: valid, Name: "b", Addresses: []string{"not-an-ip"}}, enrol.ErrBadInput, "not an IP"},
		{"bad endpoint", robotwire.EnrolRequest{JoinToken: valid, Name: "b", RemoteAccess: &robotwire.RemoteAccess{Protocol: "telnet", Host: "h", Port: 23}}, enrol.ErrBadInput, "telnet"},
	} {
		_, err := f.svc.Enrol(ctx, c.in)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v naming %q", c.what, err, c.is, c.want)
			continue
		}
		if strings.Contains(err.Error(), c.in.JoinToken) {
			t.Errorf("%s: the refusal echoes the join token: %v", c.what, err)
		}
	}
	// Nothing of the refused enrolments was written, and the valid
	// token's use was not spent by the name clash.
	if n := f.db.Robot.Query().CountX(sys()); n != 2 {
		t.Fatalf("%d robots, want the 2 enrolled", n)
	}
	for _, jt := range f.db.JoinToken.Query().AllX(sys()) {
		if jt.PoolName == "onprem" && jt.MaxUses == 5 && jt.Uses != 0 {
			t.Fatalf("join token %d: %d uses spent by refusals", jt.ID, jt.Uses)
		}
	}
}

// Joins racing for the last uses of one token never exceed its uses.
func TestConcurrentJoinsRespectUses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		db.Pool.Update().SetMax(100).ExecX(sys())
		_, join := f.token(t, "onprem", time.Hour, 3)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		var other []error
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.Enrol(context.Background(), req(join, fmt.Sprintf("m%02d", i)))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, enrol.ErrRefused):
					refused++
				default:
					other = append(other, err)
				}
			}()
		}
		wg.Wait()
		// A database that serialises writers may fail a racing
		// transaction outright; that is a refusal too, never an extra
		// robot.
		if ok > 3 || ok == 0 {
			t.Fatalf("%d joins succeeded with a 3-use token (%d refused, other errors %v)", ok, refused, other)
		}
		if n := db.Robot.Query().CountX(sys()); n != ok {
			t.Fatalf("%d robots for %d successful joins", n, ok)
		}
		if len(other) == 0 && ok != 3 {
			t.Fatalf("%d joins succeeded, want exactly 3", ok)
		}
	})
}

// Joins racing for the last places of a pool never exceed its max, even
// with tokens to spare.
func TestConcurrentJoinsRespectMax(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db) // onprem: max 3
		_, join := f.token(t, "onprem", time.Hour, 50)
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = f.svc.Enrol(context.Background(), req(join, fmt.Sprintf("m%02d", i)))
			}()
		}
		wg.Wait()
		if n := db.Robot.Query().CountX(sys()); n < 1 || n > 3 {
			t.Fatalf("%d robots enrolled into a pool of max 3", n)
		}
	})
}

// Neither the join token nor the robot token is stored, logged or
// published in clear.
func TestSecretsNeverStoredOrLogged(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.SQLite, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, db)
	sub := f.bus.Subscribe(t.Context(), events.Filter{})
	_, join := f.token(t, "onprem", time.Hour, 1)
	resp, err := f.svc.Enrol(context.Background(), req(join, "w1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeRobot(context.Background(), "w1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "s.db*"))
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{join, resp.Token} {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s holds a secret in clear", filepath.Base(path))
			}
		}
	}
	for _, s := range []string{join, resp.Token} {
		if strings.Contains(f.logs.String(), s) {
			t.Fatalf("the log holds a secret:\n%s", f.logs)
		}
	}
	for len(sub) > 0 {
		ev := <-sub
		for _, s := range []string{join, resp.Token} {
			if strings.Contains(ev.Message, s) {
				t.Fatalf("event %s holds a secret", ev.Type)
			}
		}
	}
}

// A revoked robot's open long poll ends at once, its token is refused, and
// it leaves the pool; the other robot keeps its identity.
func TestRevokeEndsTheOpenClaim(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	_, join := f.token(t, "onprem", time.Hour, 2)
	a, err := f.svc.Enrol(context.Background(), req(join, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.svc.Enrol(context.Background(), req(join, "b"))
	if err != nil {
		t.Fatal(err)
	}
	api := &robotapi.Service{Client: f.db.Client, Queue: dispatch.New(f.db.Client, dispatch.Options{Bus: f.bus}), Bus: f.bus}
	pa, _ := auth.Authenticate(context.Background(), f.db.Client, a.Token)
	done := make(chan error, 1)
	go func() {
		_, err := api.Claim(context.Background(), *pa.RobotID, robotapi.MaxPollWait)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the claim is waiting
	start := time.Now()
	if err := f.svc.RevokeRobot(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, dispatch.ErrRobotUnavailable) {
			t.Fatalf("open claim after revocation: %v, want refused", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the open claim ended %s after the revocation", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the open claim did not end on revocation")
	}
	if _, err := auth.Authenticate(context.Background(), f.db.Client, a.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked robot token: %v", err)
	}
	if _, err := auth.Authenticate(context.Background(), f.db.Client, b.Token); err != nil {
		t.Fatalf("the other robot's token: %v", err)
	}
	rb := f.db.Robot.Query().Where(robot.Name("a")).WithVM().OnlyX(sys())
	if rb.State != robot.StateReleased || rb.Edges.VM.State != vm.StateDeleted {
		t.Fatalf("revoked robot %s, machine %s", rb.State, rb.Edges.VM.State)
	}
	if err := f.svc.RevokeRobot(context.Background(), "a"); !errors.Is(err, enrol.ErrBadInput) {
		t.Fatalf("second revocation: %v", err)
	}
	if err := f.svc.RevokeRobot(context.Background(), "nobody"); !errors.Is(err, enrol.ErrBadInput) || !strings.Contains(err.Error(), `no robot "nobody"`) {
		t.Fatalf("unknown robot: %v", err)
	}
}

// A rented robot's revocation leaves it draining, so the scaler destroys
// its VM rather than leaving it running unseen.
func TestRevokeRentedRobotDrains(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	p := f.db.Pool.Query().FirstX(sys())
	v := f.db.VM.Create().SetPoolID(p.ID).SetProvider("local").SetIdempotencyKey("rpacloud-x").SetState(vm.StateRunning).SaveX(sys())
	rb := f.db.Robot.Create().SetName("x").SetPoolID(p.ID).SetVMID(v.ID).SetState(robot.StateIdle).SaveX(sys())
	id := rb.ID
	secret, err := auth.Issue(sys(), f.db.Client, auth.IssueRequest{Name: auth.RobotTokenName("x"), Role: viewer.Robot, RobotID: &id})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeRobot(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	if st := f.db.Robot.GetX(sys(), id).State; st != robot.StateDraining {
		t.Fatalf("revoked rented robot %s, want draining", st)
	}
	if _, err := auth.Authenticate(context.Background(), f.db.Client, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := f.svc.RevokeRobot(context.Background(), "x"); !errors.Is(err, enrol.ErrBadInput) {
		t.Fatalf("second revocation: %v", err)
	}
}

// The HTTP route answers refusals with their status and message, never
// echoing the request, and an identity on success.
func TestHandler(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	srv := httptest.NewServer(f.svc.Handler())
	defer srv.Close()
	_, join := f.token(t, "onprem", time.Hour, 1)
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := post(`{"joinToken":"` + join + `","name":"h1","bogus":1}`)
	if code != 400 || !strings.Contains(body, `unknown field \"bogus\"`) || strings.Contains(body, join) {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	code, body = post(`{"joinToken":"` + join + `", broken`)
	if code != 400 || strings.Contains(body, join) {
		t.Fatalf("broken JSON: %d %s", code, body)
	}
	b, _ := json.Marshal(req(join, "h1"))
	code, body = post(string(b))
	var id robotwire.EnrolResponse
	if code != 200 || json.Unmarshal([]byte(body), &id) != nil || id.Robot != "h1" || id.Token == "" {
		t.Fatalf("enrol: %d %s", code, body)
	}
	b, _ = json.Marshal(req(join, "h2"))
	code, body = post(string(b))
	if code != 403 || !strings.Contains(body, "used up") || strings.Contains(body, join) {
		t.Fatalf("used-up token: %d %s", code, body)
	}
	b, _ = json.Marshal(req("rpj_not-a-token", "h3"))
	if code, body = post(string(b)); code != 403 {
		t.Fatalf("unknown token: %d %s", code, body)
	}
	// The audit trail: one entry per enrolment tried (requests that were
	// not enrolments at all, like the broken JSON, are not), actor the
	// join token's id, from the caller's address, the token nowhere.
	jt := f.db.JoinToken.Query().OnlyX(sys())
	rows := f.db.AuditEntry.Query().Order(ent.Asc(auditentry.FieldID)).AllX(sys())
	if len(rows) != 3 {
		t.Fatalf("%d audit entries, want 3: %v", len(rows), rows)
	}
	actor := fmt.Sprintf("join-token:%d", jt.ID)
	for i, want := range []struct{ actor, outcome, target string }{
		{actor, "ok", "robot h1 in pool onprem"}, {actor, "refused", "robot h2"}, {"join-token:unknown", "refused", "robot h3"},
	} {
		r := rows[i]
		if r.Actor != want.actor || string(r.Outcome) != want.outcome || r.Target != want.target || r.Action != "enrolRobot" ||
			!strings.HasPrefix(r.RemoteAddr, "127.0.0.1:") || strings.Contains(r.Arguments, join) || !strings.Contains(r.Arguments, `"joinToken":"[redacted]"`) {
			t.Errorf("entry %d: %v", i, r)
		}
	}
}

// A flood from one address is turned away 429 without using up the
// allowance of agents at other addresses.
func TestHandlerLimitsPerAddress(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	h := f.svc.Handler()
	post := func(addr string) int {
		r := httptest.NewRequest(http.MethodPost, robotwire.EnrolPath, strings.NewReader(`{"joinToken":"rpj_x","name":"n"}`))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	limited := false
	for range 50 {
		if post("192.0.2.1:40000") == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("50 enrolments at once from one address were never limited")
	}
	for i := range 5 {
		if code := post(fmt.Sprintf("192.0.2.%d:40000", 10+i)); code == http.StatusTooManyRequests {
			t.Fatalf("agent at another address refused 429 during one address's flood")
		}
	}
}

// Control characters in what the machine reports (a NUL breaks
// PostgreSQL's insert) are refused 400 naming the field. (Invalid UTF-8
// cannot arrive through JSON: the decoder replaces it.)
func TestHandlerRefusesControlCharacters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, join := f.token(t, "onprem", time.Hour, 5)
		for _, c := range []struct {
			field string
			edit  func(*robotwire.EnrolRequest)
		}{
			{"hostname", func(r *robotwire.EnrolRequest) { r.Hostname = "h\x00st" }},
			{"os", func(r *robotwire.EnrolRequest) { r.OS = "linux\x1b[2J" }},
			{"remote-access host", func(r *robotwire.EnrolRequest) {
				r.RemoteAccess = &robotwire.RemoteAccess{Protocol: "ssh", Host: "h\x00", Port: 22}
			}},
			{"remote-access username", func(r *robotwire.EnrolRequest) {
				r.RemoteAccess = &robotwire.RemoteAccess{Protocol: "ssh", Host: "h", Port: 22, Username: "u\x00"}
			}},
		} {
			in := req(join, "c1")
			c.edit(&in)
			srv := httptest.NewServer(f.svc.Handler())
			b, _ := json.Marshal(in)
			resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			srv.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), c.field) || strings.Contains(string(body), join) {
				t.Errorf("%s: %d %s, want 400 naming it", c.field, resp.StatusCode, body)
			}
		}
		if n := f.db.Robot.Query().CountX(sys()); n != 0 {
			t.Fatalf("%d robots written by refused enrolments", n)
		}
	})
}

// A bad remote-access endpoint says "bad input" once.
func TestBadEndpointMessageOnce(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	_, join := f.token(t, "onprem", time.Hour, 1)
	in := req(join, "e1")
	in.RemoteAccess = &robotwire.RemoteAccess{Protocol: "ssh", Host: "a b", Port: 22}
	_, err := f.svc.Enrol(context.Background(), in)
	if !errors.Is(err, enrol.ErrBadInput) || strings.Count(err.Error(), "bad input") != 1 || !strings.Contains(err.Error(), "remote-access host") {
		t.Fatalf("%v, want one bad input naming the remote-access host", err)
	}
}

// A rented robot already draining (scale-in) still holds a working token:
// revoking it ends the token, and only then is it "already revoked".
func TestRevokeDrainingRentedRobot(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	p := f.db.Pool.Query().FirstX(sys())
	v := f.db.VM.Create().SetPoolID(p.ID).SetProvider("local").SetIdempotencyKey("rpacloud-d").SetState(vm.StateRunning).SaveX(sys())
	rb := f.db.Robot.Create().SetName("d").SetPoolID(p.ID).SetVMID(v.ID).SetState(robot.StateDraining).SaveX(sys())
	id := rb.ID
	secret, err := auth.Issue(sys(), f.db.Client, auth.IssueRequest{Name: auth.RobotTokenName("d"), Role: viewer.Robot, RobotID: &id})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeRobot(context.Background(), "d"); err != nil {
		t.Fatalf("revoking a draining robot with a live token: %v", err)
	}
	if _, err := auth.Authenticate(context.Background(), f.db.Client, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("token of the revoked draining robot: %v", err)
	}
	if st := f.db.Robot.GetX(sys(), id).State; st != robot.StateDraining {
		t.Fatalf("revoked draining robot %s, want still draining", st)
	}
	if err := f.svc.RevokeRobot(context.Background(), "d"); !errors.Is(err, enrol.ErrBadInput) {
		t.Fatalf("second revocation: %v", err)
	}
}

// After a revoke the machine can enrol again under the same name with a
// join token made after the revoke (not with the one it enrolled with);
// the old identity stays in the history under a retired
// name, and its token stays dead.
func TestReEnrolAfterRevokeReusesTheName(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		_, join := f.token(t, "onprem", time.Hour, 5)
		first, err := f.svc.Enrol(ctx, req(join, "w1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Enrol(ctx, req(join, "w1")); !errors.Is(err, enrol.ErrConflict) {
			t.Fatalf("second enrolment of a live name: %v", err)
		}
		if err := f.svc.RevokeRobot(ctx, "w1"); err != nil {
			t.Fatal(err)
		}
		// The join token it enrolled with does not undo the revoke...
		if _, err := f.svc.Enrol(ctx, req(join, "w1")); !errors.Is(err, enrol.ErrRefused) || !strings.Contains(err.Error(), "created after") {
			t.Fatalf("re-enrolment with the join token made before the revoke: %v", err)
		}
		// ...one an administrator made after it does.
		f.now = f.now.Add(time.Minute)
		_, rejoin := f.token(t, "onprem", time.Hour, 1)
		second, err := f.svc.Enrol(ctx, req(rejoin, "w1"))
		if err != nil {
			t.Fatalf("re-enrolment after revoke: %v", err)
		}
		if _, err := auth.Authenticate(ctx, f.db.Client, first.Token); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("old token after re-enrolment: %v", err)
		}
		pr, err := auth.Authenticate(ctx, f.db.Client, second.Token)
		if err != nil {
			t.Fatal(err)
		}
		now := f.db.Robot.Query().Where(robot.Name("w1")).OnlyX(sys())
		if *pr.RobotID != now.ID || now.State == robot.StateReleased {
			t.Fatalf("new identity %+v for robot %+v", pr, now)
		}
		old := f.db.Robot.Query().Where(robot.NameHasPrefix("w1~revoked-")).OnlyX(sys())
		if old.State != robot.StateReleased {
			t.Fatalf("retired robot %+v", old)
		}
	})
}

// Behind a token cache following the bus (TTL one hour), a revoked
// robot's token is refused at its very next check.
func TestRevokeEndsTheCachedToken(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	cache := auth.NewCache(f.db.Client, auth.Options{TTL: time.Hour})
	cache.Follow(t.Context(), f.bus)
	_, join := f.token(t, "onprem", time.Hour, 1)
	resp, err := f.svc.Enrol(context.Background(), req(join, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Authenticate(context.Background(), resp.Token); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeRobot(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Authenticate(context.Background(), resp.Token); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked robot's token, next check: %v", err)
	}
}
