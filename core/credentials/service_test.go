package credentials_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/credentials/layout"
	"github.com/rpacloud/rpacloud/core/credentials/vaulttest"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"

	"github.com/rpacloud/rpacloud/core/credentials/secret"

	"github.com/rpacloud/rpacloud/core/robotwire"
)

// newService returns a service on its own KV mount of the shared Vault,
// logged in with the root token from a token file.
func newService(t *testing.T, v *vaulttest.Vault) *credentials.Service {
	t.Helper()
	return newServiceWith(t, v, v.Token, v.NewMount(t))
}

func newServiceWith(t *testing.T, v *vaulttest.Vault, token, mount string) *credentials.Service {
	t.Helper()
	s, err := credentials.New(credentials.Options{
		Vault: &config.Vault{Address: v.Addr, AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, token),
			Mount: mount, Prefix: "rpacloud"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(context.Background()); err != nil {
		t.Fatalf("login: %v", err)
	}
	return s
}

var (
	finance = "acme-finance"
	hr      = "acme-hr"
)

func ref(c, n string) layout.Ref { return layout.Ref{Customer: c, Name: n} }

func TestOnboarding(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, vaulttest.Shared(t))
	r := ref(finance, "etax/acme")
	sec := secret.Secret{Username: "acme-001", Password: "pw-v1", TOTPSeed: "JBSWY3DPEHPK3PXP", Extra: map[string]string{"tax_id": "91310000"}}
	m, err := s.Put(ctx, r, sec, "operator:alice")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if m.Version != 1 || m.UpdatedBy != "operator:alice" || strings.Join(m.Fields, ",") != "password,tax_id,totp_seed,username" {
		t.Errorf("meta after put = %+v", m)
	}
	if m.UpdatedAt.IsZero() || time.Since(m.UpdatedAt) > time.Minute {
		t.Errorf("updated at = %v", m.UpdatedAt)
	}
	if _, err := s.Put(ctx, r, sec, "operator:alice"); !errors.Is(err, secret.ErrExists) {
		t.Errorf("second put: err = %v, want secret.ErrExists", err)
	}
	if _, err := s.Rotate(ctx, ref(finance, "nope"), sec, "x"); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("rotate of a missing credential: err = %v, want secret.ErrNotFound", err)
	}
	m, err = s.Rotate(ctx, r, secret.Secret{Username: "acme-001", Password: "pw-v2"}, "operator:bob")
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if m.Version != 2 || m.UpdatedBy != "operator:bob" || strings.Join(m.Fields, ",") != "password,username" {
		t.Errorf("meta after rotate = %+v", m)
	}
	if _, err := s.Put(ctx, ref(finance, "bank/acme-payments"), secret.Secret{Username: "u", Password: "p"}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, ref(hr, "etax/acme"), secret.Secret{Password: "hr"}, "x"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx, finance)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); got != "bank/acme-payments etax/acme" {
		t.Errorf("list = %q", got)
	}
	if list, err := s.List(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("list of a customer without credentials = %v, %v", list, err)
	}
	// Configuration references (a vendor's API key) resolve by path#field.
	mount := s.Layout().Mount
	if _, err := s.Put(ctx, ref("vendors", "uipath-prod"), secret.Secret{Extra: map[string]string{"client_secret": "cs-1"}}, "x"); err != nil {
		t.Fatal(err)
	}
	vr, _ := config.ParseVaultRef("vault:" + mount + "/rpacloud/vendors/uipath-prod#client_secret")
	if got, err := s.Resolve(ctx, vr); err != nil || got != "cs-1" {
		t.Errorf("resolve %v = %q, %v", vr, got, err)
	}
	vr.Field = "nope"
	if _, err := s.Resolve(ctx, vr); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("resolve of a missing field: %v", err)
	}
	if err := s.Delete(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Meta(ctx, r); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("meta after delete: %v", err)
	}
	if err := s.Delete(ctx, r); !errors.Is(err, secret.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	// Bad input is refused before Vault is asked, naming the field.
	for _, bad := range []struct {
		r   layout.Ref
		sec secret.Secret
	}{
		{ref(finance, "../acme-hr/etax"), sec},
		{ref("a/b", "x"), sec},
		{ref(finance, "x"), secret.Secret{}},
		{ref(finance, "x"), secret.Secret{Extra: map[string]string{"Password": "p"}}},
		{ref(finance, "x"), secret.Secret{Extra: map[string]string{"password": "p"}}},
	} {
		if _, err := s.Put(ctx, bad.r, bad.sec, "x"); !errors.Is(err, secret.ErrBadInput) {
			t.Errorf("put %v: err = %v, want secret.ErrBadInput", bad.r, err)
		}
	}
}

func TestDeliveryExpiryAndRevocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := vaulttest.Shared(t)
	s := newService(t, v)
	if _, err := s.Put(ctx, ref(finance, "etax/acme"), secret.Secret{Username: "acme-001", Password: "pw-1"}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, ref(finance, "bank/pay"), secret.Secret{Username: "pay", Password: "pw-2", Extra: map[string]string{"pin": "1234"}}, "x"); err != nil {
		t.Fatal(err)
	}
	binds := []credentials.Binding{{Name: "etax/acme", Ref: ref(finance, "etax/acme")}, {Name: "bank/pay", Ref: ref(finance, "bank/pay")}}
	grant := func(task int, deadline time.Time) *robotwire.Grant {
		t.Helper()
		g, err := s.Grant(ctx, credentials.GrantRequest{TaskID: task, Attempt: 1, Deadline: deadline, Bindings: binds})
		if err != nil {
			t.Fatalf("grant: %v", err)
		}
		return g
	}

	t.Run("delivered once", func(t *testing.T) {
		g := grant(1, time.Now().Add(time.Minute))
		if g.VaultAddress != v.Addr || len(g.Items) != 2 || time.Until(g.ExpiresAt) > 61*time.Second {
			t.Fatalf("grant = %+v", g)
		}
		got, err := secret.Redeem(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if e := got["etax/acme"]; e.Username != "acme-001" || e.Password != "pw-1" {
			t.Errorf("etax/acme = %q/%q", e.Username, e.Password)
		}
		if b := got["bank/pay"]; b.Extra["pin"] != "1234" {
			t.Errorf("bank/pay extra = %v", b.Extra)
		}
		// Single use: a second redemption (a replayed grant) gets nothing.
		if _, err := secret.Redeem(ctx, g); !errors.Is(err, secret.ErrExpired) {
			t.Errorf("second redeem: err = %v, want secret.ErrExpired", err)
		}
		s.EndAttempt(ctx, 1, 1)
	})

	t.Run("revoked when the attempt ends", func(t *testing.T) {
		g := grant(2, time.Now().Add(time.Minute))
		s.EndAttempt(ctx, 2, 1)
		_, err := secret.Redeem(ctx, g)
		if !errors.Is(err, secret.ErrExpired) {
			t.Fatalf("redeem after the attempt ended: err = %v, want secret.ErrExpired", err)
		}
		if !strings.Contains(err.Error(), `"etax/acme"`) {
			t.Errorf("error %q does not name the credential", err)
		}
	})

	t.Run("revoked by the attempt's end event", func(t *testing.T) {
		bus := events.New()
		fctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { s.FollowAttempts(fctx, bus) })
		defer func() { cancel(); wg.Wait() }()
		time.Sleep(50 * time.Millisecond) // let the subscription start
		for i, typ := range []string{"task.succeeded", "task.delayed", "task.retrying"} {
			task := 10 + i
			g := grant(task, time.Now().Add(time.Minute))
			bus.Publish(&ent.Event{Type: typ, TaskID: &task, AttemptNo: ptr(1)})
			deadline := time.Now().Add(5 * time.Second)
			for s.Outstanding() > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := secret.Redeem(ctx, g); !errors.Is(err, secret.ErrExpired) {
				t.Errorf("%s: redeem after the event: err = %v, want secret.ErrExpired", typ, err)
			}
		}
	})

	t.Run("expires at the deadline", func(t *testing.T) {
		g := grant(3, time.Now()) // TTL is the minimum: the deadline is now
		time.Sleep(credentials.MinGrantTTL + 1500*time.Millisecond)
		if _, err := secret.Redeem(ctx, g); !errors.Is(err, secret.ErrExpired) {
			t.Fatalf("redeem after the deadline: err = %v, want secret.ErrExpired", err)
		}
		s.EndAttempt(ctx, 3, 1)
	})

	t.Run("missing credential is named", func(t *testing.T) {
		_, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 4, Attempt: 1, Deadline: time.Now().Add(time.Minute),
			Bindings: []credentials.Binding{binds[0], {Name: "etax/other", Ref: ref(finance, "etax/other")}}})
		if !errors.Is(err, secret.ErrNotFound) || !strings.Contains(err.Error(), `"etax/other"`) {
			t.Fatalf("err = %v, want secret.ErrNotFound naming etax/other", err)
		}
		if n := s.Outstanding(); n != 0 {
			t.Errorf("%d grants outstanding after a failed grant", n)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// A grant is for exactly the credentials of one attempt: its tokens cannot
// read anything directly, and a token cannot be passed off as another
// department's credential.
func TestCrossDepartmentDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := vaulttest.Shared(t)
	mount := v.NewMount(t)
	s := newServiceWith(t, v, v.Token, mount)
	if _, err := s.Put(ctx, ref(finance, "etax/acme"), secret.Secret{Password: "finance-pw"}, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, ref(hr, "etax/acme"), secret.Secret{Password: "hr-pw"}, "x"); err != nil {
		t.Fatal(err)
	}
	g, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 1, Attempt: 1, Deadline: time.Now().Add(time.Minute),
		Bindings: []credentials.Binding{{Name: "etax/acme", Ref: ref(hr, "etax/acme")}}})
	if err != nil {
		t.Fatal(err)
	}
	// A wrapping token itself reads nothing: not the secret it wraps, not
	// another department's. (Any use burns it, so each probe takes a
	// fresh grant.)
	for i, r := range []layout.Ref{ref(finance, "etax/acme"), ref(hr, "etax/acme")} {
		probe, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 100 + i, Attempt: 1, Deadline: time.Now().Add(time.Minute),
			Bindings: []credentials.Binding{{Name: "etax/acme", Ref: ref(hr, "etax/acme")}}})
		if err != nil {
			t.Fatal(err)
		}
		c := v.Client(t)
		c.SetToken(probe.Items[0].WrappingToken)
		_, err = c.Logical().Read(s.Layout().DataPath(r))
		var re *vault.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("reading %v with a wrapping token: err = %v, want 403", r, err)
		}
	}
	// Presented as Finance's credential, HR's token is refused before
	// unwrapping (and so stays unused).
	forged := *g
	forged.Items = []robotwire.GrantItem{{Name: "etax/acme", Path: s.Layout().DataPath(ref(finance, "etax/acme")), WrappingToken: g.Items[0].WrappingToken}}
	if _, err := secret.Redeem(ctx, &forged); !errors.Is(err, secret.ErrDenied) {
		t.Fatalf("forged grant: err = %v, want secret.ErrDenied", err)
	}
	got, err := secret.Redeem(ctx, g)
	if err != nil || got["etax/acme"].Password != "hr-pw" {
		t.Fatalf("genuine grant after the forged one: %v", err)
	}
	// A daemon token limited to HR (as a per-department Vault policy would
	// be) is denied Finance's credentials.
	if err := v.Client(t).Sys().PutPolicy("hr-only-"+mount, fmt.Sprintf(`path "%s/data/rpacloud/%s/*" { capabilities = ["read","create","update"] }
path "%s/metadata/rpacloud/%s/*" { capabilities = ["read","list"] }`, mount, hr, mount, hr)); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Client(t).Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"hr-only-" + mount}, TTL: "5m"})
	if err != nil {
		t.Fatal(err)
	}
	hrOnly := newServiceWith(t, v, tok.Auth.ClientToken, mount)
	if _, err := hrOnly.Meta(ctx, ref(hr, "etax/acme")); err != nil {
		t.Errorf("HR reading its own metadata: %v", err)
	}
	_, err = hrOnly.Grant(ctx, credentials.GrantRequest{TaskID: 2, Attempt: 1, Deadline: time.Now().Add(time.Minute),
		Bindings: []credentials.Binding{{Name: "etax/acme", Ref: ref(finance, "etax/acme")}}})
	if !errors.Is(err, secret.ErrDenied) || !strings.Contains(err.Error(), `"etax/acme"`) {
		t.Errorf("HR granting Finance's credential: err = %v, want secret.ErrDenied naming it", err)
	}
	if _, err := hrOnly.Put(ctx, ref(finance, "new"), secret.Secret{Password: "x"}, "x"); !errors.Is(err, secret.ErrDenied) {
		t.Errorf("HR storing into Finance: err = %v, want secret.ErrDenied", err)
	}
}

// Attempts that hold a grant keep the version they were granted; grants
// made after a rotation deliver the new version, and no robot ever sees a
// username of one version with the password of another.
func TestRotationWhileTasksRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newService(t, vaulttest.Shared(t))
	r := ref(finance, "etax/acme")
	if _, err := s.Put(ctx, r, secret.Secret{Username: "user-1", Password: "pw-1"}, "x"); err != nil {
		t.Fatal(err)
	}
	binds := []credentials.Binding{{Name: "etax/acme", Ref: r}}
	before, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 1, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if err != nil {
		t.Fatal(err)
	}

	const workers, rotations = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*100)
	stop := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				task := 1000*(w+1) + i
				g, err := s.Grant(ctx, credentials.GrantRequest{TaskID: task, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
				if err != nil {
					errs <- err
					return
				}
				got, err := secret.Redeem(ctx, g)
				s.EndAttempt(ctx, task, 1)
				if err != nil {
					errs <- err
					return
				}
				sec := got["etax/acme"]
				if strings.TrimPrefix(sec.Username, "user-") != strings.TrimPrefix(sec.Password, "pw-") {
					errs <- fmt.Errorf("torn credential: version of username %q differs from password's", sec.Username)
					return
				}
			}
		})
	}
	for i := 2; i <= rotations+1; i++ {
		if _, err := s.Rotate(ctx, r, secret.Secret{Username: fmt.Sprintf("user-%d", i), Password: fmt.Sprintf("pw-%d", i)}, "x"); err != nil {
			t.Fatalf("rotate %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := secret.Redeem(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	if sec := got["etax/acme"]; sec.Password != "pw-1" {
		t.Errorf("an attempt granted before the rotations got a different version")
	}
	after, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 2, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if err != nil {
		t.Fatal(err)
	}
	got, err = secret.Redeem(ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	if sec := got["etax/acme"]; sec.Password != fmt.Sprintf("pw-%d", rotations+1) {
		t.Errorf("a grant after the rotations did not get the last version")
	}
	if m, _ := s.Meta(ctx, r); m.Version != rotations+1 {
		t.Errorf("version = %d, want %d", m.Version, rotations+1)
	}
}

// A sealed Vault fails grants and redemptions with errors that name the
// credential and say "sealed", /healthz-style health says so, and unsealing
// brings everything back.
func TestSealedVault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := vaulttest.Own(t)
	s := newServiceWith(t, v, v.Token, "secret")
	r := ref(finance, "etax/acme")
	if _, err := s.Put(ctx, r, secret.Secret{Password: "pw"}, "x"); err != nil {
		t.Fatal(err)
	}
	binds := []credentials.Binding{{Name: "etax/acme", Ref: r}}
	early, err := s.Grant(ctx, credentials.GrantRequest{TaskID: 1, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if err != nil {
		t.Fatal(err)
	}
	if h := s.Health(ctx); h.State != credentials.StateOK {
		t.Fatalf("health before sealing = %+v", h)
	}
	if err := v.Client(t).Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	if h := s.Health(ctx); h.State != credentials.StateSealed {
		t.Errorf("health when sealed = %+v", h)
	}
	_, err = s.Grant(ctx, credentials.GrantRequest{TaskID: 2, Attempt: 1, Deadline: time.Now().Add(time.Minute), Bindings: binds})
	if !errors.Is(err, secret.ErrSealed) || !strings.Contains(err.Error(), `credential "etax/acme"`) || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("grant when sealed: err = %v", err)
	}
	if _, err := secret.Redeem(ctx, early); !errors.Is(err, secret.ErrSealed) {
		t.Errorf("redeem when sealed: err = %v, want secret.ErrSealed", err)
	}
	if _, err := s.Put(ctx, ref(finance, "x"), secret.Secret{Password: "pw"}, "x"); !errors.Is(err, secret.ErrSealed) {
		t.Errorf("put when sealed: err = %v, want secret.ErrSealed", err)
	}
	if v.Server.UnsealKey == "" {
		t.Fatal("the dev server's unseal key was not captured")
	}
	if _, err := v.Client(t).Sys().Unseal(v.Server.UnsealKey); err != nil {
		t.Fatal(err)
	}
	// The wrapping token of the early grant survives sealing.
	got, err := secret.Redeem(ctx, early)
	if err != nil || got["etax/acme"].Password != "pw" {
		t.Fatalf("redeem after unsealing: %v", err)
	}
	if h := s.Health(ctx); h.State != credentials.StateOK {
		t.Errorf("health after unsealing = %+v", h)
	}
}

func TestUnreachableAndDenied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := credentials.New(credentials.Options{
		Vault:   &config.Vault{Address: "http://127.0.0.1:1", AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, "t")},
		Logger:  slog.New(slog.DiscardHandler),
		Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Login(ctx); !errors.Is(err, secret.ErrUnreachable) {
		t.Errorf("login to nothing: err = %v, want secret.ErrUnreachable", err)
	}
	if h := s.Health(ctx); h.State != credentials.StateUnreachable {
		t.Errorf("health = %+v", h)
	}
	_, err = s.Grant(ctx, credentials.GrantRequest{TaskID: 1, Attempt: 1, Deadline: time.Now().Add(time.Minute),
		Bindings: []credentials.Binding{{Name: "etax/acme", Ref: ref(finance, "etax/acme")}}})
	if !errors.Is(err, secret.ErrUnreachable) || !strings.Contains(err.Error(), `"etax/acme"`) {
		t.Errorf("grant: err = %v", err)
	}
	g := &robotwire.Grant{VaultAddress: "http://127.0.0.1:1", Items: []robotwire.GrantItem{{Name: "etax/acme", Path: "secret/data/rpacloud/a/b", WrappingToken: "hvs.x"}}}
	if _, err := secret.Redeem(ctx, g); !errors.Is(err, secret.ErrUnreachable) {
		t.Errorf("redeem: err = %v, want secret.ErrUnreachable", err)
	}

	v := vaulttest.Shared(t)
	bad, err := credentials.New(credentials.Options{
		Vault:  &config.Vault{Address: v.Addr, AuthMethod: "token", TokenFile: vaulttest.WriteTokenFile(t, "hvs.not-a-token")},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Login(ctx); !errors.Is(err, secret.ErrDenied) || strings.Contains(err.Error(), "hvs.not-a-token") {
		t.Errorf("login with a bad token: err = %v, want secret.ErrDenied without the token", err)
	}
	if h := bad.Health(ctx); h.State != credentials.StateUnauthenticated {
		t.Errorf("health with a bad token = %+v", h)
	}
}

// The daemon renews its token while it runs, so a short-lived token
// outlives its first TTL.
func TestTokenRenewal(t *testing.T) {
	t.Parallel()
	v := vaulttest.Shared(t)
	tok, err := v.Client(t).Auth().Token().Create(&vault.TokenCreateRequest{TTL: "3s", ExplicitMaxTTL: "1h", Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	s := newServiceWith(t, v, tok.Auth.ClientToken, v.NewMount(t))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	time.Sleep(6 * time.Second)
	c := v.Client(t)
	c.SetToken(tok.Auth.ClientToken)
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("token expired although the service renews it: %v", err)
	}
	if h := s.Health(ctx); h.State != credentials.StateOK {
		t.Errorf("health = %+v", h)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	sec := secret.Secret{Username: "u", Password: "canary-pw", Extra: map[string]string{"pin": "canary-pin"}}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("x", "sec", sec, "secrets", secret.Secrets{"a": sec})
	out := fmt.Sprintf("%v %+v %#v %s", sec, sec, sec, sec) + b.String()
	if strings.Contains(out, "canary") {
		t.Fatalf("secret value printed: %s", out)
	}
}
