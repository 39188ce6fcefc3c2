package secret

import (
	"errors"
	"fmt"
	"strings"
)

// Failure kinds of a credential operation, on the daemon (store, grant) and
// on the robot (redeem). Errors wrap one of them, so callers test with
// errors.Is.
var (
	ErrOff         = errors.New("credential features are off: no Vault is configured")
	ErrSealed      = errors.New("the Vault server is sealed")
	ErrUnreachable = errors.New("the Vault server is unreachable")
	ErrDenied      = errors.New("permission denied by Vault")
	ErrNotFound    = errors.New("not found in Vault")
	ErrExists      = errors.New("already exists in Vault")
	ErrExpired     = errors.New("the grant has expired, was already used, or was revoked")
	ErrVault       = errors.New("error from Vault")
	ErrBadInput    = errors.New("bad input")
)

// Error is a failed operation on one credential. Its message names the
// credential and what went wrong, never a secret: Vault's own error text is
// not copied, only classified, so nothing a server echoes back can leak.
type Error struct {
	Op         string // "read", "store", "grant", ...
	Credential string // "customer/name" or the name a process binds
	Kind       error  // one of the Err* values
	Detail     string // safe extra words, e.g. "HTTP 500"
}

func (e *Error) Error() string {
	s := fmt.Sprintf("credential %q: %s: %v", e.Credential, e.Op, e.Kind)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap lets errors.Is find the kind.
func (e *Error) Unwrap() error { return e.Kind }

// Classify maps a Vault answer — its HTTP status and the texts of its
// "errors" list — to a kind and a safe detail. Both the daemon's Vault
// client and the robot's redemption use it, so a sealed or denying Vault
// reads the same on either side.
func Classify(status int, messages []string) (detail string, kind error) {
	joined := strings.ToLower(strings.Join(messages, " "))
	switch {
	case status == 503 && strings.Contains(joined, "sealed"):
		return "", ErrSealed
	case status == 503:
		return "HTTP 503", ErrUnreachable
	case strings.Contains(joined, "wrapping token is not valid"):
		return "", ErrExpired
	case status == 403 || status == 401:
		return "", ErrDenied
	case status == 404:
		return "", ErrNotFound
	case strings.Contains(joined, "check-and-set parameter did not match"):
		return "", ErrExists
	}
	return fmt.Sprintf("HTTP %d", status), ErrVault
}
