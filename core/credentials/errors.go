package credentials

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// Failure kinds of a Vault operation. Errors of this package wrap one of
// them, so callers test with errors.Is.
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

// classify maps an error of the Vault client to a kind and a safe detail.
func classify(err error) (detail string, kind error) {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		joined := strings.ToLower(strings.Join(re.Errors, " "))
		switch {
		case re.StatusCode == 503 && strings.Contains(joined, "sealed"):
			return "", ErrSealed
		case re.StatusCode == 503:
			return "HTTP 503", ErrUnreachable
		case strings.Contains(joined, "wrapping token is not valid"):
			return "", ErrExpired
		case re.StatusCode == 403 || re.StatusCode == 401:
			return "", ErrDenied
		case re.StatusCode == 404:
			return "", ErrNotFound
		case strings.Contains(joined, "check-and-set parameter did not match"):
			return "", ErrExists
		}
		return fmt.Sprintf("HTTP %d", re.StatusCode), ErrVault
	}
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe) {
		return "", ErrUnreachable
	}
	if strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") {
		return "", ErrUnreachable
	}
	return "", ErrVault
}

func opError(op, cred string, err error) error {
	detail, kind := classify(err)
	return &Error{Op: op, Credential: cred, Kind: kind, Detail: detail}
}
