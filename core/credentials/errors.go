package credentials

import (
	"errors"
	"net"
	"net/url"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

// The failure kinds (secret.ErrOff, secret.ErrNotFound, ...) and the
// error type (secret.Error) are defined in package secret, which robots
// link too: a kind means the same on either side of a grant.

// classify maps an error of the Vault client to a kind and a safe detail.
func classify(err error) (detail string, kind error) {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		return secret.Classify(re.StatusCode, re.Errors)
	}
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &oe) {
		return "", secret.ErrUnreachable
	}
	if strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") {
		return "", secret.ErrUnreachable
	}
	return "", secret.ErrVault
}

func opError(op, cred string, err error) error {
	detail, kind := classify(err)
	return &secret.Error{Op: op, Credential: cred, Kind: kind, Detail: detail}
}
