// Package secret is the part of the credentials room a robot links: a
// credential's content (Secret, which never prints its values), the
// secrets of one attempt carried in a context, scrubbing them out of text,
// the failure kinds of a credential operation, and redeeming a grant's
// wrapping tokens straight from Vault over HTTP. It links no storage, no
// configuration language, no event bus and no Vault client library (whose
// API package links an HCL parser): the daemon's side, which stores,
// rotates and grants, is package credentials.
package secret

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strings"

	"github.com/rpacloud/rpacloud/core/credentials/layout"
)

// Secret is one credential's content. It prints, logs and marshals as
// "[redacted]" so that a careless %v, slog attribute or json.Marshal can
// never put a password into a log line, an API response or an error; code
// that needs a value reads the field explicitly.
type Secret struct {
	Username string
	Password string
	TOTPSeed string
	Extra    map[string]string // other fields by name (lower-case)
}

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redacted }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps secrets out of JSON documents.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText keeps secrets out of text encodings.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Fields lists the names of the fields that are set, never their values.
func (s Secret) Fields() []string {
	var out []string
	if s.Username != "" {
		out = append(out, "username")
	}
	if s.Password != "" {
		out = append(out, "password")
	}
	if s.TOTPSeed != "" {
		out = append(out, "totp_seed")
	}
	for k := range s.Extra {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Secrets are the credentials delivered for one attempt, by the name the
// process binds them under (e.g. "etax/acme"). They live in the robot's
// memory only and are handed to the task's runner through its context.
type Secrets map[string]Secret

type secretsKey struct{}

// WithSecrets returns ctx carrying s for the runner of one attempt.
func WithSecrets(ctx context.Context, s Secrets) context.Context {
	return context.WithValue(ctx, secretsKey{}, s)
}

// SecretsFrom returns the secrets delivered for the attempt running under
// ctx; nil when its process binds none.
func SecretsFrom(ctx context.Context) Secrets {
	s, _ := ctx.Value(secretsKey{}).(Secrets)
	return s
}

// Scrub replaces every secret value of s (passwords, TOTP seeds and extra
// fields of three characters or more, raw and as they appear inside JSON
// strings) in text with "***", longest first so a value containing
// another goes whole. Robots scrub what a runner returns — output and
// error message alike — before it leaves the machine: a login page that
// echoes a password must not put it into the database. Usernames are not
// scrubbed; they name accounts in ordinary messages.
func (s Secrets) Scrub(text string) string {
	var vals []string
	add := func(v string) {
		if len(v) < 3 { // shorter values would scrub ordinary text
			return
		}
		vals = append(vals, v)
		if b, err := json.Marshal(v); err == nil {
			if esc := string(b[1 : len(b)-1]); esc != v {
				vals = append(vals, esc)
			}
		}
	}
	for _, sec := range s {
		add(sec.Password)
		add(sec.TOTPSeed)
		for _, v := range sec.Extra {
			add(v)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	for _, v := range vals {
		text = strings.ReplaceAll(text, v, "***")
	}
	return text
}

// FromData reads a credential from the fields of its Vault (KV v2) data:
// the standard fields by their layout names, every other field as an extra
// one; values that are not strings are kept as their JSON text.
func FromData(d map[string]any) Secret {
	var s Secret
	for k, v := range d {
		str, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			str = string(b)
		}
		switch k {
		case layout.FieldUsername:
			s.Username = str
		case layout.FieldPassword:
			s.Password = str
		case layout.FieldTOTPSeed:
			s.TOTPSeed = str
		default:
			if s.Extra == nil {
				s.Extra = map[string]string{}
			}
			s.Extra[k] = str
		}
	}
	return s
}
