package credentials

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

func TestClassify(t *testing.T) {
	resp := func(code int, msgs ...string) error {
		return fmt.Errorf("wrapped: %w", &vault.ResponseError{StatusCode: code, Errors: msgs, URL: "https://v/v1/x"})
	}
	for _, c := range []struct {
		err    error
		kind   error
		detail string
	}{
		{resp(503, "Vault is sealed"), secret.ErrSealed, ""},
		{resp(503, "standby"), secret.ErrUnreachable, "HTTP 503"},
		{resp(403, "permission denied"), secret.ErrDenied, ""},
		{resp(400, "wrapping token is not valid or does not exist"), secret.ErrExpired, ""},
		{resp(404), secret.ErrNotFound, ""},
		{resp(400, "check-and-set parameter did not match the current version"), secret.ErrExists, ""},
		{resp(500, "internal error: secret-value-123"), secret.ErrVault, "HTTP 500"},
		{&url.Error{Op: "Get", URL: "x", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, secret.ErrUnreachable, ""},
		{errors.New("dial tcp: connection refused"), secret.ErrUnreachable, ""},
		{errors.New("something"), secret.ErrVault, ""},
	} {
		detail, kind := classify(c.err)
		if kind != c.kind || detail != c.detail {
			t.Errorf("classify(%v) = %v, %q; want %v, %q", c.err, kind, detail, c.kind, c.detail)
		}
	}
	// Vault's own words never reach an Error's message.
	e := opError("read", "acme/etax", resp(500, "internal error: secret-value-123"))
	if strings.Contains(e.Error(), "secret-value-123") || !strings.Contains(e.Error(), `credential "acme/etax"`) {
		t.Errorf("opError = %q", e)
	}
}
