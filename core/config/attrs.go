package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/gocty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// attrs decodes the attributes of one block. Each getter reports its own
// problems with the attribute's range and returns nil when the attribute
// is absent, null or invalid, so later checks skip what already failed.
type attrs struct {
	m     hcl.Attributes
	diags *hcl.Diagnostics
}

func (a attrs) errorf(rng hcl.Range, summary, format string, args ...any) {
	*a.diags = append(*a.diags, errAt(rng, summary, fmt.Sprintf(format, args...)))
}

func errAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: rng.Ptr()}
}

// SecretSubject marks (in hcl.Diagnostic.Extra) a diagnostic whose
// subject is a secret: WriteDiagnostics prints its source line with the
// subject masked, so the refusal of a literal password does not print it
// into a terminal, a CI log or the daemon's log.
type SecretSubject struct{}

// secretAt is errAt for a subject that holds a secret.
func secretAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	d := errAt(rng, summary, detail)
	d.Extra = SecretSubject{}
	return d
}

func warnAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: detail, Subject: rng.Ptr()}
}

// value evaluates an attribute with no variables or functions: the
// configuration is static so that `validate` and the daemon see the same
// thing on every machine.
func (a attrs) value(name string, ty cty.Type) (*hcl.Attribute, cty.Value) {
	at, ok := a.m[name]
	if !ok {
		return nil, cty.NilVal
	}
	v, diags := at.Expr.Value(nil)
	*a.diags = append(*a.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return nil, cty.NilVal
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		a.errorf(at.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s.", name, err)
		return nil, cty.NilVal
	}
	if !cv.IsWhollyKnown() || cv.IsNull() {
		return nil, cty.NilVal
	}
	return at, cv
}

func (a attrs) str(name string, dst *string) *hcl.Attribute {
	at, v := a.value(name, cty.String)
	if at == nil {
		return nil
	}
	*dst = v.AsString()
	return at
}

func (a attrs) int(name string, dst *int) *hcl.Attribute {
	at, v := a.value(name, cty.Number)
	if at == nil {
		return nil
	}
	if !v.AsBigFloat().IsInt() {
		a.errorf(at.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: a whole number is required.", name)
		return nil
	}
	if err := gocty.FromCtyValue(v, dst); err != nil {
		a.errorf(at.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s.", name, err)
		return nil
	}
	return at
}

// strs decodes a list of strings and returns each element's range, so a
// bad entry in a long allow list is pointed at rather than the whole list.
func (a attrs) strs(name string, dst *[]string) (*hcl.Attribute, []hcl.Range) {
	at, v := a.value(name, cty.List(cty.String))
	if at == nil {
		return nil, nil
	}
	var out []string
	if err := gocty.FromCtyValue(v, &out); err != nil {
		a.errorf(at.Expr.Range(), "Incorrect attribute value type",
			"Inappropriate value for attribute %q: %s.", name, err)
		return nil, nil
	}
	*dst = out
	ranges := make([]hcl.Range, len(out))
	tuple, ok := at.Expr.(*hclsyntax.TupleConsExpr)
	for i := range ranges {
		ranges[i] = at.Expr.Range()
		if ok && len(tuple.Exprs) == len(out) {
			ranges[i] = tuple.Exprs[i].Range()
		}
	}
	return at, ranges
}

// dur parses a duration while the attribute's range is at hand, so a typo
// is reported where it was written rather than after decoding.
func (a attrs) dur(name string, dst *time.Duration) *hcl.Attribute {
	var s string
	at := a.str(name, &s)
	if at == nil {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil && s != "0" {
			hint = fmt.Sprintf(" (%s has no unit: did you mean \"%ss\"?)", s, s)
		}
		a.errorf(at.Expr.Range(), "Invalid duration",
			"%s = %q is not a duration%s: write a number and a unit, e.g. \"90s\", \"15m\", \"1h30m\" (units: ms, s, m, h).", name, s, hint)
		return nil
	}
	if d < 0 {
		a.errorf(at.Expr.Range(), "Invalid duration", "%s = %q is negative; it must be positive.", name, s)
		return nil
	}
	*dst = d
	return at
}

// oneOf checks an enumerated string attribute.
func (a attrs) oneOf(at *hcl.Attribute, name, got string, allowed ...string) bool {
	if at == nil {
		return true
	}
	for _, s := range allowed {
		if got == s {
			return true
		}
	}
	a.errorf(at.Expr.Range(), "Invalid value for "+name, "%s = %q is not allowed; use one of %s.", name, got, quoteList(allowed))
	return false
}

// stringForm turns a plugin-owned attribute into the string a plugin
// receives over RPC: strings as written, numbers in decimal, bools as
// true/false, anything structured as JSON.
func stringForm(v cty.Value) (string, error) {
	// An expression HCL could not evaluate (a broken one whose error was
	// reported elsewhere) yields an unknown value: it has no form to send.
	if !v.IsWhollyKnown() {
		return "", errors.New("the value cannot be computed")
	}
	if v.IsNull() {
		return "", nil
	}
	ty := v.Type()
	switch {
	case ty == cty.String:
		return v.AsString(), nil
	case ty == cty.Number:
		return v.AsBigFloat().Text('f', -1), nil
	case ty == cty.Bool:
		return strconv.FormatBool(v.True()), nil
	}
	b, err := ctyjson.Marshal(v, ty)
	if err != nil {
		return "", fmt.Errorf("encode as JSON: %w", err)
	}
	return string(b), nil
}

func quoteList(ss []string) string {
	out := ""
	for i, s := range ss {
		switch {
		case i == 0:
		case i == len(ss)-1:
			out += " or "
		default:
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}
