package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/predicate"
	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/schema/viewer"
	"github.com/rpacloud/rpacloud/ent/token"
)

// ErrUnauthenticated means the request carried no valid token.
var ErrUnauthenticated = errors.New("missing, unknown, expired or revoked token")

// secretPrefix makes leaked tokens easy to find with secret scanners.
const secretPrefix = "rpc_"

// Hash returns the stored form of a token secret.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func newSecret() (string, error) { return NewSecret(secretPrefix) }

// NewSecret returns 150 random bits behind prefix. Other secrets than
// bearer tokens (join tokens) use their own prefix, so one can never be
// taken for the other.
func NewSecret(prefix string) (string, error) {
	b := make([]byte, 30)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

// IssueRequest describes a token to make.
type IssueRequest struct {
	Name       string
	Role       viewer.Role
	CustomerID *int
	RobotID    *int
	TTL        time.Duration // 0: no expiry
}

// Tokens issues and revokes tokens and announces every token that stops
// being valid (a revocation, or a re-issue that replaces a live token of
// the same name) with a token.revoked event, saved in the same transaction
// and published on Bus after the commit. Bus carries it to this process's
// Cache and, through the PostgreSQL relay, to every other daemon's, so a
// revoked token is refused at once everywhere, not when a cache entry's
// TTL runs out. The daemon's code uses Tokens with the daemon's bus.
type Tokens struct {
	Client *ent.Client
	// Bus may be nil (tools and tests without a daemon): the event is
	// still recorded, but running daemons' caches learn of the change
	// only when their entry's TTL ends.
	Bus *events.Bus
}

// Issue creates a token and returns its secret, which is never stored and
// cannot be shown again. A token of the same name is replaced, so re-issuing
// (e.g. the dev admin token at every start) revokes the old secret.
func Issue(ctx context.Context, client *ent.Client, req IssueRequest) (string, error) {
	return Tokens{Client: client}.Issue(ctx, req)
}

// Issue is IssueTx in a transaction of its own, with the revocation of a
// replaced token published after the commit.
func (ts Tokens) Issue(ctx context.Context, req IssueRequest) (string, error) {
	if err := req.check(); err != nil {
		return "", err
	}
	tx, err := ts.Client.Tx(ctx)
	if err != nil {
		return "", fmt.Errorf("issue token %q: begin: %w", req.Name, err)
	}
	secret, evs, err := IssueTx(ctx, tx, req)
	if err != nil {
		_ = tx.Rollback()
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("issue token %q: commit: %w", req.Name, err)
	}
	ts.Bus.Publish(evs...)
	return secret, nil
}

func (req IssueRequest) check() error {
	if !req.Role.Valid() {
		return fmt.Errorf("issue token %q: unknown role %q", req.Name, req.Role)
	}
	if req.Role == viewer.Robot && req.RobotID == nil {
		return fmt.Errorf("issue token %q: a robot token needs a robot", req.Name)
	}
	// An administrator sees and steers every customer; a binding would be
	// a promise the platform does not keep, so it is refused, not ignored.
	if req.Role == viewer.Admin && req.CustomerID != nil {
		return fmt.Errorf("issue token %q: an admin token cannot be bound to a customer; issue an operator token for the customer instead", req.Name)
	}
	return nil
}

// IssueTx issues a token inside the caller's transaction (enrolment makes
// the robot and its token together). When it replaces a live token of the
// same name it returns that token's token.revoked event, saved in tx: the
// caller publishes it after the commit, or every cache keeps letting the
// old secret in until its TTL ends.
func IssueTx(ctx context.Context, tx *ent.Tx, req IssueRequest) (string, []*ent.Event, error) {
	if err := req.check(); err != nil {
		return "", nil, err
	}
	secret, err := newSecret()
	if err != nil {
		return "", nil, err
	}
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	now := time.Now().UTC()
	// The row is replaced in place (same id, new hash), so the old secret's
	// cache entries must hear that this id changed. Read under the
	// transaction: the upsert below is what serialises two issuers.
	old, err := tx.Token.Query().Where(token.Name(req.Name), token.RevokedAtIsNil()).
		Select(token.FieldID).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return "", nil, fmt.Errorf("issue token %q: read the token it replaces: %w", req.Name, err)
	}
	create := tx.Token.Create().
		SetName(req.Name).
		SetHash(Hash(secret)).
		SetRole(token.Role(req.Role)).
		SetNillableCustomerID(req.CustomerID).
		SetNillableRobotID(req.RobotID)
	if req.TTL > 0 {
		create.SetExpiresAt(now.Add(req.TTL))
	}
	err = create.OnConflictColumns(token.FieldName).UpdateNewValues().ClearRevokedAt().Exec(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("issue token %q: %w", req.Name, err)
	}
	if old == nil {
		return secret, nil, nil
	}
	ev, err := revokedEvent(ctx, tx.Event, old.ID, req.Name, "replaced", now)
	if err != nil {
		return "", nil, fmt.Errorf("issue token %q: %w", req.Name, err)
	}
	return secret, []*ent.Event{ev}, nil
}

// revokedEvent saves the token.revoked event of token id through c (the
// caller's transaction). It carries the id and name, never the secret or
// its hash, and no customer: token events are the platform's, seen only by
// platform operators, whoever the token belonged to.
func revokedEvent(ctx context.Context, c *ent.EventClient, id int, name, why string, at time.Time) (*ent.Event, error) {
	ev, err := events.Create(c, events.TokenRevoked, at).
		SetMessage(fmt.Sprintf("token %d %s: %s", id, why, name)).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("record %s of token %d: %w", events.TokenRevoked, id, err)
	}
	return ev, nil
}

// RevokedTokenID returns the token id a token.revoked event names.
func RevokedTokenID(e *ent.Event) (int, bool) {
	if !events.Is(e, events.TokenRevoked) {
		return 0, false
	}
	f := strings.Fields(e.Message)
	if len(f) < 2 || f[0] != "token" {
		return 0, false
	}
	id, err := strconv.Atoi(f[1])
	return id, err == nil
}

// RobotTokenName is the name of a robot's token, rented or enrolled: one
// place, so the scaler and enrolment issue and revoke the same name.
func RobotTokenName(robotName string) string { return "robot/" + robotName }

// Revoke ends a token by name, announcing it to no bus (see Tokens).
func Revoke(ctx context.Context, client *ent.Client, name string) error {
	return Tokens{Client: client}.Revoke(ctx, name)
}

// Revoke ends a token by name: the token is marked revoked and its
// token.revoked event saved in one transaction, and the event published
// after the commit, so every daemon's cache drops the token at once.
func (ts Tokens) Revoke(ctx context.Context, name string) error {
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	tx, err := ts.Client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("revoke token %q: begin: %w", name, err)
	}
	defer func() { _ = tx.Rollback() }()
	evs, err := RevokeTx(ctx, tx, name, time.Now().UTC())
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("revoke token %q: commit: %w", name, err)
	}
	ts.Bus.Publish(evs...)
	return nil
}

// RevokeTx revokes the live token of this name at the given time inside
// the caller's transaction and returns its token.revoked event, which the
// caller publishes after the commit.
func RevokeTx(ctx context.Context, tx *ent.Tx, name string, at time.Time) ([]*ent.Event, error) {
	return revokeWhere(ctx, tx, fmt.Sprintf("revoke token %q", name), at, true, token.Name(name))
}

// RevokeRobotTx revokes every live token of a robot at the given time
// (enrolment compares it with join tokens' creation) inside the caller's
// transaction and returns their token.revoked events, to publish after the
// commit; none is not an error.
func RevokeRobotTx(ctx context.Context, tx *ent.Tx, robotID int, at time.Time) ([]*ent.Event, error) {
	return revokeWhere(ctx, tx, fmt.Sprintf("revoke tokens of robot %d", robotID), at, false, token.RobotID(robotID))
}

func revokeWhere(ctx context.Context, tx *ent.Tx, what string, now time.Time, mustExist bool, where predicate.Token) ([]*ent.Event, error) {
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	live, err := tx.Token.Query().Where(where, token.RevokedAtIsNil()).
		Select(token.FieldID, token.FieldName).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var evs []*ent.Event
	for _, t := range live {
		// RevokedAtIsNil again: of two revokers racing on SQLite's
		// deferred transactions or PostgreSQL's read committed, only one
		// counts the token and announces it.
		n, err := tx.Token.Update().Where(token.ID(t.ID), token.RevokedAtIsNil()).SetRevokedAt(now).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if n == 0 {
			continue
		}
		ev, err := revokedEvent(ctx, tx.Event, t.ID, t.Name, "revoked", now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		evs = append(evs, ev)
	}
	if mustExist && len(evs) == 0 {
		return nil, fmt.Errorf("%s: no such active token", what)
	}
	return evs, nil
}

// Authenticate returns the principal of a secret.
func Authenticate(ctx context.Context, client *ent.Client, secret string) (viewer.Principal, error) {
	if !strings.HasPrefix(secret, secretPrefix) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	t, err := client.Token.Query().Where(token.Hash(Hash(secret))).Only(ctx)
	if ent.IsNotFound(err) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return viewer.Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	if !valid(t, time.Now()) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	return principal(t), nil
}

func principal(t *ent.Token) viewer.Principal {
	return viewer.Principal{
		TokenID:    t.ID,
		Name:       t.Name,
		Role:       viewer.Role(t.Role),
		CustomerID: t.CustomerID,
		RobotID:    t.RobotID,
	}
}

// Check reports whether the token with this ID is still valid: it returns
// ErrUnauthenticated once the token is revoked, expired or deleted, and
// otherwise its expiry (nil: none). It is the re-check of long-lived
// connections (GraphQL websockets): one lookup by primary key.
func Check(ctx context.Context, client *ent.Client, tokenID int) (*time.Time, error) {
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	t, err := client.Token.Query().Where(token.ID(tokenID)).
		Select(token.FieldRevokedAt, token.FieldExpiresAt).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("check token %d: %w", tokenID, err)
	}
	if !valid(t, time.Now()) {
		return nil, ErrUnauthenticated
	}
	return t.ExpiresAt, nil
}

// valid is the one rule for a token's life, at sign-in and at every
// re-check: neither revoked nor past its expiry.
func valid(t *ent.Token, now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// BearerToken extracts the secret of an Authorization header.
func BearerToken(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// Middleware authenticates every request against the database, one
// query per request; the daemon uses Cache.Middleware instead. A request
// without a valid token gets 401, except websocket upgrades: browsers
// cannot set headers on them, so GraphQL authenticates those in
// connection_init instead.
func Middleware(client *ent.Client, next http.Handler) http.Handler {
	return middleware(func(ctx context.Context, secret string) (viewer.Principal, error) {
		return Authenticate(ctx, client, secret)
	}, next)
}

func middleware(authenticate func(context.Context, string) (viewer.Principal, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := BearerToken(r.Header.Get("Authorization"))
		if !ok {
			if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				next.ServeHTTP(w, r)
				return
			}
			unauthorized(w)
			return
		}
		p, err := authenticate(r.Context(), secret)
		if errors.Is(err, ErrUnauthenticated) {
			unauthorized(w)
			return
		}
		if err != nil {
			// The token could not be checked (the database did not
			// answer): not a refusal. A 401 here would tell robots their
			// identity is gone, and they stop for good; 503 makes every
			// client retry.
			unavailable(w)
			return
		}
		next.ServeHTTP(w, r.WithContext(viewer.NewContext(r.Context(), p)))
	})
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "5")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`{"errors":[{"message":"the token could not be checked now; try again","extensions":{"code":"UNAVAILABLE"}}]}` + "\n"))
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="rpacloud"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"errors":[{"message":"unauthenticated: send Authorization: Bearer <token>","extensions":{"code":"UNAUTHENTICATED"}}]}` + "\n"))
}
