package config

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// Plugin kinds, as PluginSchemas is asked about them (the values of
// plugins/sdk's Kind constants, which this package does not import).
const (
	KindProvider = "provider"
	KindCrawler  = "crawler"
	KindVendor   = "vendor"
)

// PluginAttribute is one attribute a plugin declares in its Info
// (plugins/sdk ConfigAttribute, without linking the SDK here).
type PluginAttribute struct {
	Name      string
	Type      string // "string", "number", "bool", "duration" or "list"
	Required  bool
	Sensitive bool // a secret: must be written as a vault:PATH#FIELD reference
}

// ErrPluginNotFound is wrapped by a PluginSchemas answer when no plugin of
// that kind and name exists; the error's text says where it was looked
// for, and becomes the diagnostic's detail.
var ErrPluginNotFound = errors.New("plugin not found")

// PluginSchemas finds plugins and reads the configuration schema each
// declares. The wiring in cmd gives one (built-ins from the binary's
// table, others started from the plugin directory just to read their
// Info); this package never starts a plugin itself.
type PluginSchemas interface {
	// PluginSchema returns what plugin kind/name declares. server is the
	// configuration's server block, whose PluginDirectory is where the
	// daemon looks for plugin executables.
	PluginSchema(ctx context.Context, server Server, kind, name string) ([]PluginAttribute, error)
}

// PluginDirectory is where the daemon looks for plugin executables.
func (s Server) PluginDirectory() string {
	if s.PluginDir != "" {
		return s.PluginDir
	}
	return filepath.Join(s.DataDir, "plugins")
}

// Attributes the daemon reads itself in blocks whose body a plugin owns.
// They are accepted beside the plugin's own, which may declare them too
// (a vendor plugin takes url, tenant and folder).
var (
	vendorOwnAttrs   = []string{"type", "url", "tenant", "folder", "credentials", "poll_interval"}
	providerOwnAttrs = []string{"plugin"}
)

// pluginUse is one use of a plugin in the configuration, resolved once
// every file is read (the plugin directory is in the server block).
type pluginUse struct {
	kind, name string
	rng        hcl.Range // the attribute that names the plugin
	what       string    // e.g. `vendor "bp" type`
	// For blocks whose body the plugin owns (vendor, provider): the body
	// left after the block's own attributes, and where the plugin's
	// attributes go in string form.
	body      hcl.Body
	own       []string
	blockType string
	block     string
	dst       map[string]string
}

// use records a plugin the configuration names. Without PluginSchemas the
// name is taken as written and the body's attributes are passed on
// unchecked, as strings.
func (l *loader) use(u pluginUse) {
	if l.plugins == nil {
		if u.body != nil {
			for k, v := range l.pluginOwned(u.body, u.blockType, u.block) {
				u.dst[k] = v
			}
		}
		return
	}
	l.uses = append(l.uses, u)
}

// maxSchemaLookups bounds the plugins asked about at once.
const maxSchemaLookups = 4

type schemaAnswer struct {
	attrs []PluginAttribute
	err   error
}

// resolvePlugins reads the schema of every plugin the configuration
// names, each once and all at once (a plugin may take seconds to start),
// then checks each use against it.
func (l *loader) resolvePlugins() {
	if len(l.uses) == 0 {
		return
	}
	srv := l.cfg.Server
	answers := map[[2]string]*schemaAnswer{}
	var wg sync.WaitGroup
	// A few at a time: each may be a process start, and a configuration
	// may name many plugins.
	slots := make(chan struct{}, maxSchemaLookups)
	for _, u := range l.uses {
		key := [2]string{u.kind, u.name}
		if answers[key] != nil {
			continue
		}
		a := &schemaAnswer{}
		answers[key] = a
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			a.attrs, a.err = l.plugins.PluginSchema(l.ctx, srv, u.kind, u.name)
		})
	}
	wg.Wait()
	for _, u := range l.uses {
		a := answers[[2]string{u.kind, u.name}]
		switch {
		case errors.Is(a.err, ErrPluginNotFound):
			l.diags = append(l.diags, errAt(u.rng, "Unknown "+u.kind+" plugin",
				fmt.Sprintf("%s = %q: %s.", u.what, u.name, strings.TrimSuffix(strings.TrimPrefix(a.err.Error(), ErrPluginNotFound.Error()+": "), "."))))
		case a.err != nil:
			l.diags = append(l.diags, errAt(u.rng, "Cannot read the plugin's schema",
				fmt.Sprintf("%s = %q: starting the plugin to read its configuration schema failed: %s.", u.what, u.name, strings.TrimSuffix(a.err.Error(), "."))))
		case u.body != nil:
			l.decodePluginBody(u, a.attrs)
		}
	}
}

// decodePluginBody checks the attributes of a block a plugin owns against
// the schema it declares, with hcldec: an attribute it does not declare is
// "Unsupported argument" (with HCL's "Did you mean" among every name the
// block takes), a value of the wrong type or a missing required attribute
// is reported where it is, and secrets must be vault: references.
func (l *loader) decodePluginBody(u pluginUse, schema []PluginAttribute) {
	spec := hcldec.ObjectSpec{}
	// The block's own attributes were taken by PartialContent and are
	// hidden from u.body; naming them here only lets a misspelling of one
	// be suggested.
	for _, n := range u.own {
		spec[n] = &hcldec.AttrSpec{Name: n, Type: cty.DynamicPseudoType}
	}
	declared := map[string]PluginAttribute{}
	for _, a := range schema {
		if _, own := spec[a.Name]; own {
			continue
		}
		declared[a.Name] = a
		// A required secret may come from the vendor block's credentials
		// instead; the plugin's Configure says when it is missing.
		spec[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: attrType(a.Type), Required: a.Required && !a.Sensitive}
	}
	val, diags := hcldec.Decode(u.body, spec, nil)
	ats, _ := u.body.JustAttributes() // its problems are among diags
	for _, d := range diags {
		// A misspelt attribute may be a secret under a name that no longer
		// looks like one ("api_kee"), and a mistyped secret is still a
		// secret: their lines are printed masked (the detail names them).
		for _, at := range ats {
			if d.Subject == nil || !at.Range.Overlaps(*d.Subject) {
				continue
			}
			if _, known := spec[at.Name]; !known || secretName(at.Name) || declared[at.Name].Sensitive {
				d.Extra = SecretSubject{}
			}
		}
	}
	l.diags = append(l.diags, diags...)
	if val.IsNull() || !val.IsKnown() {
		return
	}
	names := make([]string, 0, len(declared))
	for n := range declared {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := declared[n]
		at := ats[n]
		if at == nil || !val.Type().HasAttribute(n) {
			continue
		}
		v := val.GetAttr(n)
		if v.IsNull() || !v.IsWhollyKnown() {
			continue
		}
		if s, ok := l.pluginValue(at, v, a, u.blockType, u.block); ok {
			u.dst[n] = s
		}
	}
}

func attrType(t string) cty.Type {
	switch t {
	case "number":
		return cty.Number
	case "bool":
		return cty.Bool
	case "string", "duration":
		return cty.String
	}
	// "list": a list of strings, or the comma-separated string the plugin
	// receives; pluginValue checks which.
	return cty.DynamicPseudoType
}

// pluginValue is the string a plugin receives for one declared attribute,
// after the checks its type and secrecy call for.
func (l *loader) pluginValue(at *hcl.Attribute, v cty.Value, a PluginAttribute, blockType, name string) (string, bool) {
	if a.Sensitive || secretName(a.Name) {
		if !l.checkSecretRef(at, v, blockType, name) {
			return "", false
		}
		return v.AsString(), true
	}
	switch a.Type {
	case "duration":
		if _, err := time.ParseDuration(v.AsString()); err != nil {
			l.diags = append(l.diags, errAt(at.Expr.Range(), "Invalid duration",
				fmt.Sprintf("%s = %q is not a duration: write a number and a unit, e.g. \"90s\", \"15m\" (units: ms, s, m, h).", a.Name, v.AsString())))
			return "", false
		}
	case "list":
		ty := v.Type()
		switch {
		case ty == cty.String:
		case (ty.IsListType() || ty.IsTupleType()) && listOfStrings(v):
			parts := []string{}
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				parts = append(parts, e.AsString())
			}
			return strings.Join(parts, ","), true
		default:
			l.diags = append(l.diags, errAt(at.Expr.Range(), "Incorrect attribute value type",
				fmt.Sprintf("Inappropriate value for attribute %q: a list of strings or a comma-separated string is required.", a.Name)))
			return "", false
		}
	}
	s, err := stringForm(v)
	if err != nil {
		l.diags = append(l.diags, errAt(at.Expr.Range(), "Unsupported value", fmt.Sprintf("%s attribute %q: %s.", blockType, a.Name, err)))
		return "", false
	}
	if addressName(a.Name) && literalURLPassword(s) {
		l.diags = append(l.diags, secretAt(at.Expr.Range(), "Secret given as a literal",
			fmt.Sprintf("%s %q attribute %q: the URL carries a password, which would end up in git; put the credentials in Vault and reference them from the attribute the plugin reads them from.", blockType, name, a.Name)))
		return "", false
	}
	return s, true
}

func listOfStrings(v cty.Value) bool {
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() != cty.String || e.IsNull() {
			return false
		}
	}
	return true
}
