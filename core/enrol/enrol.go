// Package enrol takes existing machines into pools: administrators make
// join tokens for a pool, a machine's agent exchanges one for its own robot
// identity (a robot row, a VM row marked enrolled and a robot token), and
// an administrator can revoke a robot identity again.
//
// Join tokens are stored as a SHA-256 only, like API tokens (core/auth),
// and carry their own prefix (rpj_) so a join token is never accepted as a
// bearer token nor the other way round. Each enrolment consumes one use by
// a compare-and-set in the enrolment's transaction, so concurrent joins
// cannot exceed a token's uses. Neither a join token nor a robot token is
// ever logged, stored in clear or put in an error message.
package enrol

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/rpacloud/rpacloud/core/audit"
	"github.com/rpacloud/rpacloud/core/auth"
	"github.com/rpacloud/rpacloud/core/delivery"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/textlimit"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/jointoken"
	"github.com/rpacloud/rpacloud/ent/pool"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/token"
	"github.com/rpacloud/rpacloud/ent/vm"
)

var (
	// ErrBadInput: the request names something that does not exist or
	// breaks a limit; the message says what.
	ErrBadInput = errors.New("bad input")
	// ErrRefused: a join token that is unknown, revoked, expired or used
	// up, or a pool that is full.
	ErrRefused = errors.New("enrolment refused")
	// ErrConflict: the robot name is taken.
	ErrConflict = errors.New("conflict")
)

const (
	// joinPrefix marks join tokens (auth's bearer tokens are rpc_).
	joinPrefix = "rpj_"
	// MaxTTL bounds a join token's life: a join token is for a roll-out,
	// not a standing credential.
	MaxTTL = 30 * 24 * time.Hour
	// DefaultTTL is a join token's life when none is asked for.
	DefaultTTL = 24 * time.Hour
	// MaxUses bounds how many machines one join token may enrol.
	MaxUses = 10000
	// maxAddresses bounds the addresses one machine reports.
	maxAddresses = 16
)

// nameRE is a robot name: what a hostname may be, so the default (the
// machine's hostname) usually fits.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Service makes join tokens, enrols machines and revokes robots.
type Service struct {
	Client *ent.Client
	Bus    *events.Bus
	Log    *slog.Logger
	Now    func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func sys(ctx context.Context) context.Context { return privacy.DecisionContext(ctx, privacy.Allow) }

// CreateJoinToken makes a join token for an active pool and returns it
// with its secret, which is never stored and cannot be shown again.
// ttl 0 means DefaultTTL. by names who made it (an API token's name).
func (s *Service) CreateJoinToken(ctx context.Context, poolName string, ttl time.Duration, uses int, by string) (*ent.JoinToken, string, error) {
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Minute || ttl > MaxTTL {
		return nil, "", fmt.Errorf("%w: ttl %s: a join token lives from 1m to %s", ErrBadInput, ttl, MaxTTL)
	}
	if uses < 1 || uses > MaxUses {
		return nil, "", fmt.Errorf("%w: uses %d: a join token enrols from 1 to %d machines", ErrBadInput, uses, MaxUses)
	}
	ctx = sys(ctx)
	p, err := s.Client.Pool.Query().Where(pool.Name(poolName), pool.Active(true)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, "", fmt.Errorf("%w: no pool %q in the configuration", ErrBadInput, poolName)
	}
	if err != nil {
		return nil, "", fmt.Errorf("create join token: pool %q: %w", poolName, err)
	}
	secret, err := auth.NewSecret(joinPrefix)
	if err != nil {
		return nil, "", err
	}
	t, err := s.Client.JoinToken.Create().SetHash(auth.Hash(secret)).SetPoolID(p.ID).SetPoolName(p.Name).
		SetExpiresAt(s.now().Add(ttl)).SetMaxUses(uses).SetCreatedBy(textlimit.Cut(by, 128)).SetCreatedAt(s.now()).Save(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("create join token for pool %q: %w", poolName, err)
	}
	s.log().Info("join token created", "id", t.ID, "pool", p.Name, "uses", uses, "expires", t.ExpiresAt, "by", by)
	return t, secret, nil
}

// ListJoinTokens returns every join token, newest first.
func (s *Service) ListJoinTokens(ctx context.Context) ([]*ent.JoinToken, error) {
	ts, err := s.Client.JoinToken.Query().Order(ent.Desc(jointoken.FieldID)).All(sys(ctx))
	if err != nil {
		return nil, fmt.Errorf("list join tokens: %w", err)
	}
	return ts, nil
}

// RevokeJoinToken ends a join token; robots it enrolled keep their
// identities (revoke those with RevokeRobot).
func (s *Service) RevokeJoinToken(ctx context.Context, id int) error {
	n, err := s.Client.JoinToken.Update().Where(jointoken.ID(id), jointoken.RevokedAtIsNil()).
		SetRevokedAt(s.now()).Save(sys(ctx))
	if err != nil {
		return fmt.Errorf("revoke join token %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: no active join token %d", ErrBadInput, id)
	}
	s.log().Info("join token revoked", "id", id)
	return nil
}

// Enrol exchanges a join token for a robot identity: in one transaction it
// consumes one use of the token, records the machine (a VM row marked
// enrolled, with its remote-access endpoint if given) and its robot
// (permanent and enrolled), issues the robot token robot/<name> bound to
// it, and records the robot.enrolled event. Refusals name what is wrong
// but never echo the token.
//
// Every enrolment that reached this far is in the audit trail, actor the
// join token's id (join-token:unknown for a token that is not known), from
// the request's address (audit.RequestFrom), the token itself never.
func (s *Service) Enrol(ctx context.Context, req robotwire.EnrolRequest) (robotwire.EnrolResponse, error) {
	var jtID int
	resp, err := s.enrol(ctx, req, &jtID)
	s.audit(ctx, req, jtID, resp, err)
	return resp, err
}

// audit records an enrolment: the machine's names are kept, its
// addresses and remote-access endpoint are not (they are in the VM's row
// for whoever may read it), the join token never.
func (s *Service) audit(ctx context.Context, req robotwire.EnrolRequest, jtID int, resp robotwire.EnrolResponse, err error) {
	from := audit.RequestFrom(ctx)
	e := audit.Entry{Actor: audit.JoinTokenActor(jtID), Action: "enrolRobot", Outcome: audit.OK,
		Target: "robot " + req.Name, RemoteAddr: from.RemoteAddr, RequestID: from.RequestID}
	if resp.Pool != "" {
		e.Target += " in pool " + resp.Pool
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrRefused):
		e.Outcome, e.Code = audit.Refused, "REFUSED"
	case errors.Is(err, ErrBadInput):
		e.Outcome, e.Code = audit.Error, "BAD_INPUT"
	case errors.Is(err, ErrConflict):
		e.Outcome, e.Code = audit.Error, "CONFLICT"
	default:
		e.Outcome, e.Code = audit.Error, "INTERNAL"
	}
	e.Arguments = audit.Redact(map[string]any{"name": req.Name, "hostname": req.Hostname, "os": req.OS, "joinToken": req.JoinToken},
		func(path string) audit.Class {
			if path == "name" || path == "hostname" || path == "os" {
				return audit.Keep
			}
			return audit.Hide
		})
	if rerr := audit.Record(ctx, s.Client, e); rerr != nil {
		s.log().Error("audit entry not recorded", "action", e.Action, "actor", e.Actor, "err", rerr)
	}
}

func (s *Service) enrol(ctx context.Context, req robotwire.EnrolRequest, jtID *int) (robotwire.EnrolResponse, error) {
	addrs, ep, err := check(req)
	if err != nil {
		return robotwire.EnrolResponse{}, err
	}
	ctx = sys(ctx)
	now := s.now()
	var resp robotwire.EnrolResponse
	var ev *ent.Event
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return resp, fmt.Errorf("enrol: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	jt, err := tx.JoinToken.Query().Where(jointoken.Hash(auth.Hash(req.JoinToken))).Only(ctx)
	if jt != nil {
		*jtID = jt.ID
	}
	switch {
	case ent.IsNotFound(err):
		return resp, fmt.Errorf("%w: the join token is not known; ask an administrator for one (rpacloud pool join-token create)", ErrRefused)
	case err != nil:
		return resp, fmt.Errorf("enrol: join token: %w", err)
	case jt.RevokedAt != nil:
		return resp, fmt.Errorf("%w: the join token (id %d) was revoked", ErrRefused, jt.ID)
	case !now.Before(jt.ExpiresAt):
		return resp, fmt.Errorf("%w: the join token (id %d) expired at %s", ErrRefused, jt.ID, jt.ExpiresAt.Format(time.RFC3339))
	case jt.Uses >= jt.MaxUses:
		return resp, fmt.Errorf("%w: the join token (id %d) is used up (%d of %d uses)", ErrRefused, jt.ID, jt.Uses, jt.MaxUses)
	}
	// On PostgreSQL, enrolments into one pool take turns from here, so
	// two of them cannot both see room below max. (SQLite has one writer
	// at a time anyway, and no FOR UPDATE.)
	if _, err := tx.Pool.Query().Where(pool.ID(jt.PoolID)).Select(pool.FieldID).Modify(lockOnPostgres).Ints(ctx); err != nil {
		return resp, fmt.Errorf("enrol: lock pool of join token %d: %w", jt.ID, err)
	}
	p, err := tx.Pool.Get(ctx, jt.PoolID)
	if err != nil {
		return resp, fmt.Errorf("enrol: pool of join token %d: %w", jt.ID, err)
	}
	if !p.Active {
		return resp, fmt.Errorf("%w: pool %q of the join token is no longer in the configuration", ErrRefused, p.Name)
	}
	if err := freeName(ctx, tx, req.Name, jt); err != nil {
		return resp, err
	}
	// max is every robot of the pool, enrolled and rented.
	n, err := tx.Robot.Query().Where(robot.PoolID(p.ID), robot.StateNEQ(robot.StateReleased)).Count(ctx)
	if err != nil {
		return resp, fmt.Errorf("enrol: count robots: %w", err)
	}
	if n >= p.Max {
		return resp, fmt.Errorf("%w: pool %q is full: it has %d robots and max = %d", ErrRefused, p.Name, n, p.Max)
	}
	// The compare-and-set that makes uses a hard limit: of two joins
	// racing for the last use, one updates the row and the other none.
	used, err := tx.JoinToken.Update().Where(jointoken.ID(jt.ID), jointoken.RevokedAtIsNil(),
		jointoken.ExpiresAtGT(now), usesLeft()).AddUses(1).Save(ctx)
	if err != nil {
		return resp, fmt.Errorf("enrol: use join token %d: %w", jt.ID, err)
	}
	if used != 1 {
		return resp, fmt.Errorf("%w: the join token (id %d) is used up", ErrRefused, jt.ID)
	}
	first := ""
	if len(addrs) > 0 {
		first = addrs[0]
	}
	v, err := tx.VM.Create().SetPoolID(p.ID).SetIdempotencyKey("enrolled-" + req.Name).SetState(vm.StateRunning).
		SetPermanent(true).SetEnrolled(true).SetHostname(textlimit.Cut(req.Hostname, 255)).
		SetOs(textlimit.Cut(req.OS, 128)).SetAddresses(addrs).SetAddress(first).SetCreatedAt(now).Save(ctx)
	if err != nil {
		return resp, fmt.Errorf("enrol: record machine: %w", err)
	}
	rb, err := tx.Robot.Create().SetName(req.Name).SetPoolID(p.ID).SetVMID(v.ID).SetPermanent(true).SetEnrolled(true).
		SetHostname(textlimit.Cut(req.Hostname, 255)).SetCreatedAt(now).Save(ctx)
	if err != nil {
		return resp, fmt.Errorf("enrol: record robot: %w", err)
	}
	if ep != nil {
		if err := delivery.RecordEndpoint(ctx, tx.Client(), v.ID, *ep); err != nil {
			return resp, fmt.Errorf("enrol: %w", err)
		}
	}
	rid := rb.ID
	secret, replaced, err := auth.IssueTx(ctx, tx, auth.IssueRequest{Name: auth.RobotTokenName(req.Name), Role: viewer.Robot, RobotID: &rid})
	if err != nil {
		return resp, fmt.Errorf("enrol: robot token: %w", err)
	}
	ev, err = events.Create(tx.Event, events.RobotEnrolled, now).SetPoolID(p.ID).SetRobotID(rb.ID).
		SetMessage(fmt.Sprintf("robot %s enrolled on %s with join token %d", rb.Name, v.Hostname, jt.ID)).Save(ctx)
	if err != nil {
		return resp, fmt.Errorf("enrol: record event: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return resp, fmt.Errorf("enrol: commit: %w", err)
	}
	s.Bus.Publish(append(replaced, ev)...)
	s.log().Info("robot enrolled", "robot", rb.Name, "pool", p.Name, "hostname", v.Hostname, "join_token", jt.ID)
	return robotwire.EnrolResponse{Robot: rb.Name, Pool: p.Name, Token: secret}, nil
}

func lockOnPostgres(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

// usesLeft compares two columns, which the generated predicates cannot.
func usesLeft() func(*sql.Selector) {
	return func(s *sql.Selector) {
		s.Where(sql.ColumnsLT(s.C(jointoken.FieldUses), s.C(jointoken.FieldMaxUses)))
	}
}

// check validates an enrolment's inputs before anything is read.
func check(req robotwire.EnrolRequest) ([]string, *delivery.Endpoint, error) {
	if req.JoinToken == "" {
		return nil, nil, fmt.Errorf("%w: no join token", ErrBadInput)
	}
	if !nameRE.MatchString(req.Name) {
		return nil, nil, fmt.Errorf("%w: robot name %q: 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
			ErrBadInput, textlimit.Cut(req.Name, 80))
	}
	if err := checkText("hostname", req.Hostname); err != nil {
		return nil, nil, err
	}
	if err := checkText("os", req.OS); err != nil {
		return nil, nil, err
	}
	if len(req.Addresses) > maxAddresses {
		return nil, nil, fmt.Errorf("%w: %d addresses: at most %d", ErrBadInput, len(req.Addresses), maxAddresses)
	}
	addrs := make([]string, 0, len(req.Addresses))
	for _, a := range req.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: address %q is not an IP address", ErrBadInput, textlimit.Cut(a, 80))
		}
		addrs = append(addrs, ip.String())
	}
	if req.RemoteAccess == nil {
		return addrs, nil, nil
	}
	ra := req.RemoteAccess
	if err := checkText("remote-access host", ra.Host); err != nil {
		return nil, nil, err
	}
	if err := checkText("remote-access username", ra.Username); err != nil {
		return nil, nil, err
	}
	ep := &delivery.Endpoint{Protocol: ra.Protocol, Host: textlimit.Cut(ra.Host, 255), Port: ra.Port, Username: textlimit.Cut(ra.Username, 128)}
	if err := ep.Validate(); err != nil {
		// delivery's message already starts with "bad input": wrap
		// without a second prefix, still matching this package's
		// ErrBadInput.
		return nil, nil, badInput{err}
	}
	return addrs, ep, nil
}

// checkText refuses what a database column cannot hold or a terminal
// should not print: invalid UTF-8 and control characters (a NUL makes
// PostgreSQL fail the whole insert). The field is named, the value not
// echoed.
func checkText(field, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrBadInput, field)
	}
	for i, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s has a control character (U+%04X) at byte %d", ErrBadInput, field, r, i)
		}
	}
	return nil
}

// badInput is an error of another package's "bad input" that also
// matches ErrBadInput, with the message said once.
type badInput struct{ err error }

func (b badInput) Error() string   { return b.err.Error() }
func (b badInput) Unwrap() []error { return []error{ErrBadInput, b.err} }

// freeName makes req.Name available in tx or says why not. The name of a
// revoked enrolled robot may be used again — so a machine re-enrols under
// its hostname after a revoke — by renaming the old rows to
// NAME~revoked-ID (the history stays, under that name); any other holder
// of the name is a conflict. Only a join token made after the revocation
// may do it: a revoke is an administrator's decision, and the join token
// the machine enrolled with (still in its robot.env, maybe with uses left)
// must not undo it by itself.
func freeName(ctx context.Context, tx *ent.Tx, name string, jt *ent.JoinToken) error {
	old, err := tx.Robot.Query().Where(robot.Name(name)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enrol: robot name: %w", err)
	}
	if !old.Enrolled || old.State != robot.StateReleased {
		return fmt.Errorf("%w: robot name %q is already taken; choose another with --name", ErrConflict, name)
	}
	live, err := tx.Token.Query().Where(token.RobotID(old.ID), token.RevokedAtIsNil()).Exist(ctx)
	if err != nil {
		return fmt.Errorf("enrol: robot name: token of %q: %w", name, err)
	}
	if live {
		return fmt.Errorf("%w: robot name %q is already taken; choose another with --name", ErrConflict, name)
	}
	last, err := tx.Token.Query().Where(token.RobotID(old.ID), token.RevokedAtNotNil()).
		Order(ent.Desc(token.FieldRevokedAt)).First(ctx)
	switch {
	case ent.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("enrol: robot name: token of %q: %w", name, err)
	case !jt.CreatedAt.After(*last.RevokedAt):
		return fmt.Errorf("%w: robot %q was revoked at %s; only a join token created after that may enrol the name again",
			ErrRefused, name, last.RevokedAt.UTC().Format(time.RFC3339))
	}
	retired := fmt.Sprintf("%s~revoked-%d", name, old.ID)
	if err := tx.Robot.UpdateOneID(old.ID).SetName(retired).Exec(ctx); err != nil {
		return fmt.Errorf("enrol: rename revoked robot %q: %w", name, err)
	}
	if _, err := tx.VM.Update().Where(vm.IdempotencyKey("enrolled-" + name)).
		SetIdempotencyKey("enrolled-" + retired).Save(ctx); err != nil {
		return fmt.Errorf("enrol: rename machine of revoked robot %q: %w", name, err)
	}
	return nil
}

// RevokeRobot ends a robot identity: its token is revoked (its next
// request is refused 401), the robot takes no more work — an enrolled
// robot is released (it leaves the pool's counts, its machine row is
// marked deleted), a rented one drains so its VM is destroyed — and
// robot.revoked is published, which ends its open long poll at once.
//
// A task it was running is not cut short here: its attempt expires at its
// deadline and is retried per the process's policy. Whether there is
// anything to revoke is decided by the robot's token, not its state: a
// rented robot that is already draining (scale-in, a removed pool) still
// holds a working token until it is revoked.
func (s *Service) RevokeRobot(ctx context.Context, name string) error {
	ctx = sys(ctx)
	now := s.now()
	tx, err := s.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("revoke robot %q: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	rb, err := tx.Robot.Query().Where(robot.Name(name)).Only(ctx)
	if ent.IsNotFound(err) {
		return fmt.Errorf("%w: no robot %q", ErrBadInput, name)
	}
	if err != nil {
		return fmt.Errorf("revoke robot %q: %w", name, err)
	}
	revoked, err := auth.RevokeRobotTx(ctx, tx, rb.ID, now)
	if err != nil {
		return fmt.Errorf("revoke robot %q: token: %w", name, err)
	}
	stopped := rb.State == robot.StateReleased || rb.State == robot.StateDraining && !rb.Enrolled
	if len(revoked) == 0 && stopped {
		return fmt.Errorf("%w: robot %q is already revoked or released", ErrBadInput, name)
	}
	// A rented robot's VM is the provider's: it is left draining, so the
	// scaler destroys the VM (and the fleet, following the provider,
	// releases the robot and rents a replacement for a permanent one)
	// instead of a released robot's VM running on unpaid-for and unseen.
	if !stopped {
		st := robot.StateReleased
		if !rb.Enrolled && rb.VMID != nil {
			st = robot.StateDraining
		}
		if err := tx.Robot.UpdateOneID(rb.ID).SetState(st).Exec(ctx); err != nil {
			return fmt.Errorf("revoke robot %q: release: %w", name, err)
		}
	}
	if rb.Enrolled && rb.VMID != nil {
		if err := tx.VM.UpdateOneID(*rb.VMID).SetState(vm.StateDeleted).SetError("robot identity revoked").Exec(ctx); err != nil {
			return fmt.Errorf("revoke robot %q: machine: %w", name, err)
		}
	}
	ev, err := events.Create(tx.Event, events.RobotRevoked, now).SetPoolID(rb.PoolID).SetRobotID(rb.ID).
		SetMessage(fmt.Sprintf("robot %s revoked", name)).Save(ctx)
	if err != nil {
		return fmt.Errorf("revoke robot %q: record event: %w", name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke robot %q: commit: %w", name, err)
	}
	// The tokens' events first: the robot's next request is refused by
	// every daemon's cache by the time robot.revoked ends its long poll.
	s.Bus.Publish(append(revoked, ev)...)
	s.log().Info("robot revoked", "robot", name)
	return nil
}
