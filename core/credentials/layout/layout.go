// Package layout is where credentials live in Vault's KV v2 engine and what
// their names may look like. It is pure (no I/O) so the rules the API, the
// daemon and the robot apply can be tested exhaustively.
//
// A credential of customer (company or department) C named N is the KV v2
// secret MOUNT/data/PREFIX/C/N, with its metadata at MOUNT/metadata/PREFIX/C/N.
// N may have several segments ("etax/acme"), so a department can group its
// logins by system.
package layout

import (
	"fmt"
	"regexp"
	"strings"
)

// segmentRE is one path segment. "." and ".." are refused separately: Vault
// would clean them away and a name could then point at another customer.
var segmentRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// MaxNameLen bounds a credential name; Vault paths have no hard limit, but
// names are shown in tables and error messages.
const MaxNameLen = 200

// Fields every credential may carry; anything else is an extra field.
const (
	FieldUsername = "username"
	FieldPassword = "password"
	FieldTOTPSeed = "totp_seed"
)

func checkSegments(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("%s is %d characters long, at most %d", what, len(s), MaxNameLen)
	}
	for _, seg := range strings.Split(s, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("%s %q has an empty segment (leading, trailing or double '/')", what, s)
		case seg == "." || seg == "..":
			return fmt.Errorf("%s %q has a %q segment", what, s, seg)
		case !segmentRE.MatchString(seg):
			return fmt.Errorf("%s %q: segments are letters, digits, '-', '_' and '.', separated by '/'", what, s)
		}
	}
	return nil
}

// CheckName validates a credential name such as "etax/acme".
func CheckName(name string) error { return checkSegments("credential name", name) }

// CheckCustomer validates a customer name used as one path segment.
func CheckCustomer(customer string) error {
	if strings.Contains(customer, "/") {
		return fmt.Errorf("customer name %q cannot hold credentials: it contains '/'", customer)
	}
	if err := checkSegments("customer name", customer); err != nil {
		return fmt.Errorf("customer %q cannot hold credentials: %w", customer, err)
	}
	return nil
}

// CheckMountOrPrefix validates the vault block's mount and prefix.
func CheckMountOrPrefix(what, s string) error { return checkSegments(what, s) }

// fieldRE is an extra field's name: lower-case so that "Password" and
// "password" cannot both exist.
var fieldRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// CheckField validates the name of a field of a credential.
func CheckField(name string) error {
	if !fieldRE.MatchString(name) {
		return fmt.Errorf("field name %q: use 1-64 lower-case letters, digits and '_', starting with a letter", name)
	}
	return nil
}

// Layout places credentials under one KV v2 mount and prefix.
type Layout struct {
	Mount  string // e.g. "secret"
	Prefix string // e.g. "rpacloud"
}

// Check validates the mount and prefix.
func (l Layout) Check() error {
	if err := CheckMountOrPrefix("vault mount", l.Mount); err != nil {
		return err
	}
	return CheckMountOrPrefix("vault prefix", l.Prefix)
}

// Ref names one credential: the customer that owns it and its name.
type Ref struct {
	Customer string
	Name     string
}

// String is the display form "customer/name"; it never contains a value.
func (r Ref) String() string { return r.Customer + "/" + r.Name }

// Check validates both parts.
func (r Ref) Check() error {
	if err := CheckCustomer(r.Customer); err != nil {
		return err
	}
	return CheckName(r.Name)
}

// rel is the path of a ref under the mount's data or metadata tree.
func (l Layout) rel(r Ref) string { return l.Prefix + "/" + r.Customer + "/" + r.Name }

// DataPath is the KV v2 path that reads or writes the secret itself.
func (l Layout) DataPath(r Ref) string { return l.Mount + "/data/" + l.rel(r) }

// MetadataPath is the KV v2 path of the secret's metadata (versions,
// times, custom metadata) and of deleting every version.
func (l Layout) MetadataPath(r Ref) string { return l.Mount + "/metadata/" + l.rel(r) }

// CustomerListPath is the KV v2 path that lists a customer's credentials.
func (l Layout) CustomerListPath(customer string) string {
	return l.Mount + "/metadata/" + l.Prefix + "/" + customer
}

// ParseDataPath is the inverse of DataPath. The robot uses it to check that
// a wrapping token was made by reading exactly the credential it expects.
func (l Layout) ParseDataPath(p string) (Ref, bool) {
	head := l.Mount + "/data/" + l.Prefix + "/"
	rest, ok := strings.CutPrefix(p, head)
	if !ok {
		return Ref{}, false
	}
	cust, name, ok := strings.Cut(rest, "/")
	if !ok {
		return Ref{}, false
	}
	r := Ref{Customer: cust, Name: name}
	if r.Check() != nil {
		return Ref{}, false
	}
	return r, true
}
