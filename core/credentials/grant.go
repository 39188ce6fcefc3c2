package credentials

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rpacloud/rpacloud/core/credentials/layout"
	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/robotwire"
)

// Binding is one credential a process uses: the name it is bound under and
// where it lives.
type Binding struct {
	Name string     // as the runner sees it
	Ref  layout.Ref // customer and name in Vault
}

// GrantRequest asks for the credentials of one attempt.
type GrantRequest struct {
	TaskID   int
	Attempt  int
	Deadline time.Time
	Bindings []Binding
}

// MinGrantTTL keeps a grant usable for a robot that claims a task whose
// deadline is very close.
const MinGrantTTL = 5 * time.Second

// Grant makes a grant (the robot protocol's robotwire.Grant) for one attempt. Its wrapping tokens expire at the
// attempt's deadline and are revoked by EndAttempt. When any credential
// cannot be wrapped the error names it, and the tokens made so far are
// revoked.
func (s *Service) Grant(ctx context.Context, req GrantRequest) (*robotwire.Grant, error) {
	if s == nil {
		if len(req.Bindings) == 0 {
			return nil, nil
		}
		return nil, &secret.Error{Op: "grant", Credential: req.Bindings[0].Name, Kind: secret.ErrOff}
	}
	if len(req.Bindings) == 0 {
		return nil, nil
	}
	ttl := max(time.Until(req.Deadline), MinGrantTTL).Round(time.Second)
	hdr := http.Header{"X-Vault-Wrap-TTL": []string{fmt.Sprintf("%ds", int(ttl.Seconds()))}}
	g := &robotwire.Grant{VaultAddress: s.robot, ExpiresAt: time.Now().Add(ttl).UTC()}
	var accessors []string
	for _, b := range req.Bindings {
		if err := b.Ref.Check(); err != nil {
			s.revoke(ctx, accessors)
			return nil, &secret.Error{Op: "grant", Credential: b.Name, Kind: secret.ErrBadInput, Detail: err.Error()}
		}
		path := s.lay.DataPath(b.Ref)
		sec, err := s.read(ctx, path, hdr)
		var gerr error
		switch {
		case err != nil:
			gerr = opError("grant", b.Name, err)
		case sec == nil || sec.WrapInfo == nil || sec.WrapInfo.Token == "":
			// A missing secret answers 404, which the client turns
			// into no secret at all rather than a wrapped error.
			gerr = &secret.Error{Op: "grant", Credential: b.Name, Kind: secret.ErrNotFound, Detail: "not onboarded for customer " + b.Ref.Customer}
		}
		if gerr != nil {
			s.revoke(ctx, accessors)
			return nil, gerr
		}
		accessors = append(accessors, sec.WrapInfo.Accessor)
		g.Items = append(g.Items, robotwire.GrantItem{Name: b.Name, Path: path, WrappingToken: sec.WrapInfo.Token})
	}
	s.grants.add(attemptKey{req.TaskID, req.Attempt}, accessors, req.Deadline)
	return g, nil
}

// EndAttempt revokes what is left of an attempt's grant: the attempt ended
// (reported, timed out, or taken back), so its robot may read nothing more.
func (s *Service) EndAttempt(ctx context.Context, taskID, attempt int) {
	if s == nil {
		return
	}
	// Counted as outstanding until revoked, so "no grant outstanding"
	// means no token of an ended attempt is usable any more.
	s.grants.inflight.Add(1)
	defer s.grants.inflight.Add(-1)
	accessors := s.grants.take(attemptKey{taskID, attempt})
	s.revoke(ctx, accessors)
}

// revoke revokes wrapping tokens by accessor. A token already unwrapped or
// expired is gone, which is what revoking wants; other failures are logged
// and left to the token's TTL, which ends it at the deadline anyway.
func (s *Service) revoke(ctx context.Context, accessors []string) {
	for _, a := range accessors {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		err := s.client.Auth().Token().RevokeAccessorWithContext(rctx, a)
		cancel()
		if err == nil {
			continue
		}
		detail, kind := classify(err)
		if errors.Is(kind, secret.ErrVault) || errors.Is(kind, secret.ErrExpired) || errors.Is(kind, secret.ErrNotFound) {
			// Vault answers 400 "invalid accessor" for a token that was
			// used or expired: nothing left to revoke.
			continue
		}
		s.log.Warn("vault: could not revoke a grant; its TTL ends it at the deadline", "err", kind, "detail", detail)
	}
}

// endEvents are the events after which an attempt is over.
var endEvents = map[events.Type]bool{events.TaskSucceeded: true, events.TaskFailed: true, events.TaskRetrying: true,
	events.TaskDelayed: true, events.TaskCancelled: true}

// FollowAttempts ends grants as attempts end, from the event bus, until ctx
// ends. Reports and time-outs both publish an event, whichever daemon or
// loop made them.
func (s *Service) FollowAttempts(ctx context.Context, bus *events.Bus) {
	if s == nil || bus == nil {
		return
	}
	for e := range bus.Subscribe(ctx, events.Filter{Types: endEvents}) {
		if e.TaskID == nil || e.AttemptNo == nil {
			continue
		}
		s.EndAttempt(ctx, *e.TaskID, *e.AttemptNo)
	}
}

type attemptKey struct{ task, attempt int }

type grantRecord struct {
	accessors []string
	deadline  time.Time
}

// tracker remembers the wrapping tokens of running attempts so they can be
// revoked when the attempt ends. It is memory only: after a daemon restart
// the tokens' TTL (the attempt's deadline) still ends them.
type tracker struct {
	s        *Service
	mu       sync.Mutex
	m        map[attemptKey]grantRecord
	inflight atomic.Int64 // revocations under way
}

func newTracker(s *Service) *tracker { return &tracker{s: s, m: map[attemptKey]grantRecord{}} }

func (t *tracker) add(k attemptKey, accessors []string, deadline time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.m[k]
	r.accessors = append(r.accessors, accessors...)
	r.deadline = deadline
	t.m[k] = r
}

func (t *tracker) take(k attemptKey) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.m[k]
	delete(t.m, k)
	return r.accessors
}

// outstanding is how many attempts hold grants (tests, metrics).
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m) + int(t.inflight.Load())
}

// expireLoop forgets (and revokes) grants past their deadline, so the map
// cannot grow when end events are missed.
func (t *tracker) expireLoop(ctx context.Context) {
	for retry.Sleep(ctx, 5*time.Second) {
		now := time.Now()
		var old []string
		t.mu.Lock()
		for k, r := range t.m {
			if now.After(r.deadline) {
				old = append(old, r.accessors...)
				delete(t.m, k)
			}
		}
		t.mu.Unlock()
		t.s.revoke(ctx, old)
	}
}

// Outstanding is how many attempts currently hold a grant.
func (s *Service) Outstanding() int {
	if s == nil {
		return 0
	}
	return s.grants.outstanding()
}
