package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// VaultRef points at one field of one secret in Vault, written in HCL as
// "vault:PATH#FIELD", e.g. "vault:kv/rpacloud/vendors/uipath#client_secret".
type VaultRef struct {
	Path  string // e.g. "kv/rpacloud/vendors/uipath"
	Field string // e.g. "client_secret"
}

// String returns the reference in its HCL form.
func (r VaultRef) String() string { return "vault:" + r.Path + "#" + r.Field }

var (
	vaultPathRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	vaultRefRE  = regexp.MustCompile(`^vault:([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)#([A-Za-z0-9_.-]+)$`)
)

// ParseVaultRef parses a "vault:PATH#FIELD" reference.
func ParseVaultRef(s string) (VaultRef, error) {
	m := vaultRefRE.FindStringSubmatch(s)
	if m == nil {
		return VaultRef{}, fmt.Errorf("%q is not a vault:PATH#FIELD reference", s)
	}
	return VaultRef{Path: m[1], Field: m[2]}, nil
}

// secretWords mark attribute names whose values are secrets. A name
// ending in _file names a file that holds the secret, which is fine to
// write down (token_file, secret_id_file, credentials_file).
var secretWords = []string{
	"secret", "password", "passwd", "passphrase", "token", "api_key", "apikey",
	"key_id", "access_key", "private_key", "credential",
}

// IsSecretName reports whether an attribute of a provider, vendor or vault
// block must hold a vault:PATH#FIELD reference rather than a literal.
func IsSecretName(name string) bool { return secretName(name) }

// addressSuffixes mark attribute names whose values are addresses, which
// are written down even when the name mentions a secret (token_url is the
// OAuth endpoint, not a token). A password inside such a URL is refused
// separately (literalURLPassword).
var addressSuffixes = []string{"_url", "_uri", "_endpoint", "_address", "_addr"}

func addressName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range addressSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

// literalURLPassword reports whether s is a URL that carries a password.
func literalURLPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return false
	}
	_, set := u.User.Password()
	return set
}

func secretName(name string) bool {
	n := strings.ToLower(name)
	if strings.HasSuffix(n, "_file") || addressName(n) {
		return false
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
