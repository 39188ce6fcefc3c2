// Package auth issues and checks the bearer tokens of people and robots.
// Only a SHA-256 of each secret is stored, so a copy of the database does
// not let anyone in.
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
	"strings"
	"time"

	"github.com/rpacloud/rpacloud/ent"
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

// Issue creates a token and returns its secret, which is never stored and
// cannot be shown again. A token of the same name is replaced, so re-issuing
// (e.g. the dev admin token at every start) revokes the old secret.
func Issue(ctx context.Context, client *ent.Client, req IssueRequest) (string, error) {
	if !req.Role.Valid() {
		return "", fmt.Errorf("issue token %q: unknown role %q", req.Name, req.Role)
	}
	if req.Role == viewer.Robot && req.RobotID == nil {
		return "", fmt.Errorf("issue token %q: a robot token needs a robot", req.Name)
	}
	// An administrator sees and steers every customer; a binding would be
	// a promise the platform does not keep, so it is refused, not ignored.
	if req.Role == viewer.Admin && req.CustomerID != nil {
		return "", fmt.Errorf("issue token %q: an admin token cannot be bound to a customer; issue an operator token for the customer instead", req.Name)
	}
	secret, err := newSecret()
	if err != nil {
		return "", err
	}
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	create := client.Token.Create().
		SetName(req.Name).
		SetHash(Hash(secret)).
		SetRole(token.Role(req.Role)).
		SetNillableCustomerID(req.CustomerID).
		SetNillableRobotID(req.RobotID)
	if req.TTL > 0 {
		create.SetExpiresAt(time.Now().UTC().Add(req.TTL))
	}
	err = create.OnConflictColumns(token.FieldName).UpdateNewValues().ClearRevokedAt().Exec(ctx)
	if err != nil {
		return "", fmt.Errorf("issue token %q: %w", req.Name, err)
	}
	return secret, nil
}

// RobotTokenName is the name of a robot's token, rented or enrolled: one
// place, so the scaler and enrolment issue and revoke the same name.
func RobotTokenName(robotName string) string { return "robot/" + robotName }

// Revoke ends a token by name.
func Revoke(ctx context.Context, client *ent.Client, name string) error {
	ctx = privacy.DecisionContext(ctx, privacy.Allow)
	n, err := client.Token.Update().Where(token.Name(name), token.RevokedAtIsNil()).
		SetRevokedAt(time.Now().UTC()).Save(ctx)
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("revoke token %q: no such active token", name)
	}
	return nil
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
	if !valid(t) {
		return viewer.Principal{}, ErrUnauthenticated
	}
	return viewer.Principal{
		TokenID:    t.ID,
		Name:       t.Name,
		Role:       viewer.Role(t.Role),
		CustomerID: t.CustomerID,
		RobotID:    t.RobotID,
	}, nil
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
	if !valid(t) {
		return nil, ErrUnauthenticated
	}
	return t.ExpiresAt, nil
}

// valid is the one rule for a token's life, at sign-in and at every
// re-check: neither revoked nor past its expiry.
func valid(t *ent.Token) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || time.Now().Before(*t.ExpiresAt))
}

// BearerToken extracts the secret of an Authorization header.
func BearerToken(h string) (string, bool) {
	const p = "Bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	return strings.TrimSpace(h[len(p):]), true
}

// Middleware authenticates every request. A request without a valid token
// gets 401, except websocket upgrades: browsers cannot set headers on them,
// so GraphQL authenticates those in connection_init instead.
func Middleware(client *ent.Client, next http.Handler) http.Handler {
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
		p, err := Authenticate(r.Context(), client, secret)
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
