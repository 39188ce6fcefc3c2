package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/hcl/v2"
)

// Live is where a long-lived service reads the configuration at the time
// of use, so that a reload (Holder.Store) reaches it without the service
// keeping a copy of its own. A *Config is a Live that never changes, which
// is what tests and one-shot commands pass.
type Live interface {
	Current() *Config
}

// Current returns c itself: a fixed configuration is its own Live.
func (c *Config) Current() *Config { return c }

// Holder is the daemon's running configuration, swapped whole on a reload;
// readers see either the old or the new one, never a mix.
type Holder struct{ p atomic.Pointer[Config] }

// NewHolder holds c.
func NewHolder(c *Config) *Holder {
	h := &Holder{}
	h.p.Store(c)
	return h
}

// Current returns the configuration held now.
func (h *Holder) Current() *Config { return h.p.Load() }

// Store replaces the held configuration.
func (h *Holder) Store(c *Config) { h.p.Store(c) }

// Outcome is what applying a configuration to a running daemon did, or
// would do for a dry run.
type Outcome struct {
	Plan        Plan
	Diagnostics hcl.Diagnostics      // the loader's, warnings included
	Files       map[string]*hcl.File // for WriteDiagnostics
	Applied     bool                 // false for a dry run, an empty plan and every refusal
}

// Action is what a plan does to one block.
type Action string

// The actions of a plan, in the order a plan lists them within a kind.
const (
	Add    Action = "add"
	Change Action = "change"
	Remove Action = "remove"
)

var actionOrder = map[Action]int{Add: 0, Change: 1, Remove: 2}
var actionSign = map[Action]string{Add: "+", Change: "~", Remove: "-"}

// Plan is what applying a new configuration over the running one changes,
// block by block, like `terraform plan`. It is pure data: Diff builds it,
// the daemon annotates it (Note) and applies it.
type Plan struct {
	Changes []BlockChange `json:"changes"`
}

// BlockChange is one block added, changed or removed.
type BlockChange struct {
	Kind   string `json:"kind"` // "pool", "process", ... as the HCL block is named
	Name   string `json:"name"` // its label; "" for unlabelled blocks (server, vault, monitor, documents)
	Action Action `json:"action"`
	// Attributes are the attributes that differ, for a change; nested
	// blocks are dotted (scaling.cooldown, schedule.nightly.cron).
	Attributes []AttributeChange `json:"attributes,omitempty"`
	// Restart says why this change cannot be applied to a running daemon;
	// "" when it can. A plan with any such change is refused whole.
	Restart string `json:"restart,omitempty"`
	// Note is what the daemon adds from its state, e.g. how many tasks a
	// removed pool still has to drain.
	Note string `json:"note,omitempty"`
	// HostFiles says why this change may come only from the daemon's own
	// --config files (at start or on SIGHUP), never from files sent over
	// the API; "" when any admin may apply it. Such blocks make the daemon
	// start executables on its host: an API token must not reach them.
	HostFiles string `json:"host_files,omitempty"`
}

// AttributeChange is one attribute's old and new value as rendered text;
// "" means absent. Secrets are written only as vault references in
// HCL; a value under a secret's name that is not one is masked anyway.
type AttributeChange struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return len(p.Changes) == 0 }

// NeedsRestart returns the changes that a running daemon cannot apply.
func (p Plan) NeedsRestart() []BlockChange {
	var out []BlockChange
	for _, c := range p.Changes {
		if c.Restart != "" {
			out = append(out, c)
		}
	}
	return out
}

// NeedsHostFiles returns the changes that only the daemon's own files may
// make (BlockChange.HostFiles).
func (p Plan) NeedsHostFiles() []BlockChange {
	var out []BlockChange
	for _, c := range p.Changes {
		if c.HostFiles != "" {
			out = append(out, c)
		}
	}
	return out
}

// Hash identifies what the plan changes, so that an apply can insist on
// the plan its operator was shown (config apply sends it back): the hex
// sha256 of the changes as JSON, notes left out (a draining pool's task
// count moves on between plan and apply without changing what applies).
func (p Plan) Hash() string {
	cs := make([]BlockChange, len(p.Changes))
	for i, c := range p.Changes {
		c.Note = ""
		cs[i] = c
	}
	b, err := json.Marshal(cs)
	if err != nil { // plain strings and slices of them: cannot fail
		panic(fmt.Sprintf("config: plan hash: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Summary is one line: "2 to add, 1 to change, 1 to remove".
func (p Plan) Summary() string {
	n := map[Action]int{}
	for _, c := range p.Changes {
		n[c.Action]++
	}
	return fmt.Sprintf("%d to add, %d to change, %d to remove", n[Add], n[Change], n[Remove])
}

// String renders the plan as text, one block per line and one attribute
// per indented line:
//
//   - pool "b"
//     ~ process "x"
//     max_duration: 10m0s → 20m0s
//   - pool "c" (drains: 2 tasks)
//     ~ server (needs a restart: …)
func (p Plan) String() string {
	var b strings.Builder
	_ = p.WriteText(&b)
	return b.String()
}

// WriteText writes String's rendering to w, ending with the summary.
func (p Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	if p.Empty() {
		b.WriteString("No changes: the configuration matches the running one.\n")
	}
	for _, c := range p.Changes {
		b.WriteString(actionSign[c.Action] + " " + c.Kind)
		if c.Name != "" {
			fmt.Fprintf(&b, " %q", c.Name)
		}
		if c.Note != "" {
			b.WriteString(" (" + c.Note + ")")
		}
		if c.Restart != "" {
			b.WriteString(" (needs a restart: " + c.Restart + ")")
		}
		if c.HostFiles != "" {
			b.WriteString(" (needs the daemon's own files: " + c.HostFiles + ")")
		}
		b.WriteString("\n")
		for _, a := range c.Attributes {
			fmt.Fprintf(&b, "    %s: %s → %s\n", a.Name, shown(a.Old), shown(a.New))
		}
	}
	if !p.Empty() {
		b.WriteString("Plan: " + p.Summary() + ".\n")
		if r := p.NeedsRestart(); len(r) > 0 {
			fmt.Fprintf(&b, "%d change(s) need a restart: apply refuses this plan; restart the daemon with these files instead.\n", len(r))
		}
		if h := p.NeedsHostFiles(); len(h) > 0 {
			fmt.Fprintf(&b, "%d change(s) need the daemon's own files: apply through the API refuses this plan; change the daemon's --config files and reload with SIGHUP.\n", len(h))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func shown(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// block is one named block of a kind, flattened for comparison.
type block struct {
	name string
	v    any
}

// kind is one row of the table Diff walks: a new block type (e.g.
// triggers) is one more row here.
type planKind struct {
	name string
	// restart, when set, is why any change of this kind needs a restart.
	restart string
	// changeRestart is why changing (not adding or removing) a block of
	// this kind needs a restart.
	changeRestart string
	// attrRestart: a block whose attributes under one of these prefixes
	// differ (added and removed blocks included) needs a restart, why.
	attrRestart map[string]string
	// hostFiles, when set, is why adding or changing a block of this
	// kind may come only from the daemon's own files (BlockChange.HostFiles);
	// removing one starts nothing, so anyone who may apply may remove it.
	hostFiles string
	blocks    func(*Config) []block
}

func named[T any](xs []T, name func(T) string) []block {
	out := make([]block, 0, len(xs))
	for _, x := range xs {
		out = append(out, block{name(x), x})
	}
	return out
}

func single(v any, present bool) []block {
	if !present {
		return nil
	}
	return []block{{"", v}}
}

// HostFilesProviders is why provider blocks come only from the daemon's
// own files: the local provider's robot_command, plugin_dir and state_dir
// name what the daemon runs and writes on its host.
const HostFilesProviders = "providers start executables on the daemon host: change them in the daemon's --config files and reload with SIGHUP"

// kinds lists every part of a configuration. The reasons say what a
// running daemon has built from the block once, at start.
var planKinds = []planKind{
	{name: "server", restart: "the daemon's listener, storage, directories, log level and request limits are set up once at start",
		blocks: func(c *Config) []block { return single(c.Server, true) }},
	{name: "vault", restart: "the daemon logs in to Vault once and keeps its token alive; a new address or login needs a restart",
		blocks: func(c *Config) []block {
			if c.Vault == nil {
				return nil
			}
			return single(*c.Vault, true)
		}},
	{name: "monitor", attrRestart: map[string]string{"webhook": "the monitor's webhook is started once; its thresholds and intervals change live"},
		blocks: func(c *Config) []block { return single(c.Monitor, !monitorEmpty(c.Monitor)) }},
	{name: "documents", blocks: func(c *Config) []block { return single(c.Documents, true) }},
	{name: "customer", blocks: func(c *Config) []block { return named(c.Customers, func(x Customer) string { return x.Name }) }},
	{name: "provider", changeRestart: "a provider's plugin keeps the robots it rented; a changed provider block takes effect at the next restart",
		hostFiles: HostFilesProviders,
		blocks:    func(c *Config) []block { return named(c.Providers, func(x Provider) string { return x.Name }) }},
	{name: "network", blocks: func(c *Config) []block { return named(c.Networks, func(x Network) string { return x.Name }) }},
	{name: "pool", blocks: func(c *Config) []block { return named(c.Pools, func(x Pool) string { return x.Name }) }},
	{name: "vendor", blocks: func(c *Config) []block { return named(c.Vendors, func(x Vendor) string { return x.Name }) }},
	{name: "flow", blocks: func(c *Config) []block { return named(c.Flows, func(x Flow) string { return x.Name }) }},
	{name: "process", blocks: func(c *Config) []block { return named(c.Processes, func(x Process) string { return x.Name }) }},
	// The trigger service reads calendars and triggers from Live at each
	// tick: both change live. A changed calendar file or inputs_file shows
	// as a change of its digest.
	{name: "calendar", blocks: func(c *Config) []block { return named(c.Calendars, func(x Calendar) string { return x.Name }) }},
	{name: "trigger", blocks: func(c *Config) []block { return named(c.Triggers, func(x Trigger) string { return x.Name }) }},
	// The pruner reads its retention from Live at each round.
	{name: "retention", blocks: func(c *Config) []block { return single(c.Retention, !retentionDefault(c.Retention)) }},
}

// monitorEmpty reports a monitor block that sets nothing (no block).
func monitorEmpty(m Monitor) bool {
	m.DeclRange = hcl.Range{}
	return reflect.ValueOf(m).IsZero()
}

// Diff compares the running configuration with a new one. Changes come in
// the order of planKinds, then add, change, remove, then by name; attributes
// by name. Neither argument is modified.
func Diff(old, new *Config) Plan {
	p := Plan{Changes: []BlockChange{}}
	for _, k := range planKinds {
		var ob, nb []block
		if old != nil {
			ob = k.blocks(old)
		}
		if new != nil {
			nb = k.blocks(new)
		}
		om, nm := map[string]map[string]string{}, map[string]map[string]string{}
		for _, b := range ob {
			om[b.name] = flatten(b.v)
		}
		for _, b := range nb {
			nm[b.name] = flatten(b.v)
		}
		var cs []BlockChange
		for name, na := range nm {
			oa, ok := om[name]
			switch {
			case !ok:
				cs = append(cs, BlockChange{Kind: k.name, Name: name, Action: Add, Restart: k.restartOf(Add, diffAttrs(nil, na)), HostFiles: k.hostFiles})
			default:
				if attrs := diffAttrs(oa, na); len(attrs) > 0 {
					// A change that needs a restart says so alone: "reload
					// from the daemon's files" would be refused as well.
					restart, host := k.restartOf(Change, attrs), k.hostFiles
					if restart != "" {
						host = ""
					}
					cs = append(cs, BlockChange{Kind: k.name, Name: name, Action: Change, Attributes: attrs, Restart: restart, HostFiles: host})
				}
			}
		}
		for name, oa := range om {
			if _, ok := nm[name]; !ok {
				cs = append(cs, BlockChange{Kind: k.name, Name: name, Action: Remove, Restart: k.restartOf(Remove, diffAttrs(oa, nil))})
			}
		}
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].Action != cs[j].Action {
				return actionOrder[cs[i].Action] < actionOrder[cs[j].Action]
			}
			return cs[i].Name < cs[j].Name
		})
		p.Changes = append(p.Changes, cs...)
	}
	return p
}

// restartOf is why a change of this kind with these attributes needs a
// restart; "" when it applies live.
func (k planKind) restartOf(a Action, attrs []AttributeChange) string {
	if k.restart != "" {
		return k.restart
	}
	if a == Change && k.changeRestart != "" {
		return k.changeRestart
	}
	for _, at := range attrs {
		for prefix, why := range k.attrRestart {
			if at.Name == prefix || strings.HasPrefix(at.Name, prefix+".") {
				return why
			}
		}
	}
	return ""
}

func diffAttrs(old, new map[string]string) []AttributeChange {
	var out []AttributeChange
	for k, nv := range new {
		if ov := old[k]; ov != nv {
			out = append(out, AttributeChange{Name: k, Old: ov, New: nv})
		}
	}
	for k, ov := range old {
		if _, ok := new[k]; !ok {
			out = append(out, AttributeChange{Name: k, Old: ov})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var (
	rangeType    = reflect.TypeFor[hcl.Range]()
	cronType     = reflect.TypeFor[Cron]()
	durationType = reflect.TypeFor[time.Duration]()
)

// flatten renders a block's exported fields as attribute → text, by
// reflection, so that a field added to a block is compared without a
// line here. Source ranges, the raw body and the parsed cron (its text is
// compared) are left out; nested structs are dotted, slices of structs
// with a Name are keyed by it, other slices and maps are JSON.
func flatten(v any) map[string]string {
	out := map[string]string{}
	flattenInto(out, "", reflect.ValueOf(v))
	return out
}

func flattenInto(out map[string]string, prefix string, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			flattenInto(out, prefix, v.Elem())
		}
		return
	case reflect.Interface:
		return // hcl.Body: the plugin-owned attributes are in Config/Extra as text
	case reflect.Struct:
		if v.Type() == rangeType || v.Type() == cronType {
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			flattenInto(out, join(prefix, snake(f.Name)), v.Field(i))
		}
		return
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := range v.Len() {
				e := v.Index(i)
				key := fmt.Sprint(i)
				if n := e.FieldByName("Name"); n.IsValid() && n.Kind() == reflect.String && n.String() != "" {
					key = n.String()
				}
				flattenInto(out, join(prefix, key), e)
			}
			return
		}
		if v.Len() == 0 {
			return
		}
	case reflect.Map:
		if v.Len() == 0 {
			return
		}
		if v.Type().Elem().Kind() == reflect.String {
			// Provider and vendor attributes: one entry each, so a
			// change names the attribute and a secret can be masked.
			for _, k := range v.MapKeys() {
				out[join(prefix, k.String())] = masked(k.String(), v.MapIndex(k).String())
			}
			return
		}
	}
	if prefix == "" || v.IsZero() {
		return
	}
	out[prefix] = masked(prefix[strings.LastIndex(prefix, ".")+1:], leaf(v))
}

func leaf(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Slice, reflect.Map:
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return fmt.Sprint(v.Interface())
		}
		return string(b)
	}
	return fmt.Sprint(v.Interface())
}

// masked keeps a plan free of secret values: the loader refuses literal
// secrets under secret names, so this only guards against a future
// attribute that slips through.
func masked(name, v string) string {
	if secretName(name) && !strings.HasPrefix(v, "vault:") {
		return "(sensitive)"
	}
	if literalURLPassword(v) { // a database DSN may carry one
		if u, err := url.Parse(v); err == nil {
			return u.Redacted()
		}
	}
	return v
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// snake turns a Go field name into its HCL attribute name: MaxDuration →
// max_duration, PublicURL → public_url, SecretIDFile → secret_id_file.
func snake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) && i > 0 {
			prevLower := unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1])
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if prevLower || (unicode.IsUpper(r[i-1]) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(c))
	}
	return b.String()
}
