package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/gocty"

	"github.com/rpacloud/rpacloud/plugins/sdk/flowstep"
)

// Flow is the ordered steps a crawler robot runs for one task of a crawler
// process (`flow = "NAME"` in the process). Step strings may use
// {{input.PATH}}, {{credentials.NAME.FIELD}} and {{outputs.NAME}}; they are
// expanded by the crawler at run time, never here.
type Flow struct {
	Name      string
	Crawler   string          // "browser" | "http" | "" (either)
	Steps     []flowstep.Step // what the crawler runs, as decoded: no copy in between
	DeclRange hcl.Range
	creds     []flowCred // credentials the steps use
}

var flowActions = map[string]struct {
	crawlers string // which crawlers implement it
	required []string
	allowed  []string
}{
	"navigate":   {"browser http", []string{"url"}, []string{"timeout"}},
	"fill":       {"browser", []string{"selector", "value"}, []string{"timeout", "data_error"}},
	"select":     {"browser", []string{"selector", "value"}, []string{"timeout", "data_error"}},
	"click":      {"browser", []string{"selector"}, []string{"timeout"}},
	"wait_for":   {"browser", []string{"selector"}, []string{"timeout", "data_error", "message"}},
	"extract":    {"browser http", []string{"output"}, []string{"selector", "attribute", "regex", "json_path", "timeout", "data_error"}},
	"screenshot": {"browser", nil, []string{"output", "timeout"}},
	"assert":     {"browser http", nil, []string{"selector", "regex", "json_path", "state", "text_contains", "data_error", "message", "timeout"}},
	"request":    {"http", []string{"url"}, []string{"method", "form", "json", "headers", "status", "timeout", "data_error"}},
}

// flowCrawlers run the step language of flow blocks: the built-in
// crawlers, whose test checks this list against their declared steps.
var flowCrawlers = []string{"browser", "http"}

var flowSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "crawler"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "step", LabelNames: []string{"action"}}},
}

var stepAttrNames = []string{"selector", "value", "url", "attribute", "output", "timeout", "method", "form", "json",
	"headers", "regex", "json_path", "status", "state", "text_contains", "data_error", "message"}

// varRE finds {{...}} references in step strings.
var varRE = regexp.MustCompile(`\{\{\s*([^}]*?)\s*\}\}`)

var varNameRE = regexp.MustCompile(`^(input(\.[A-Za-z0-9_\-]+)*|credentials\.[A-Za-z0-9_.\-/]+\.[A-Za-z0-9_\-]+|outputs\.[A-Za-z0-9_\-]+)$`)

// flowCred is a credential a flow uses, checked against the processes
// that run it once every file is read.
type flowCred struct {
	name string
	rng  hcl.Range
}

func (l *loader) decodeFlow(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, flowSchema)
	a := l.attrs(c.Attributes)
	f := Flow{Name: name, DeclRange: b.DefRange}
	if at := a.str("crawler", &f.Crawler); at != nil {
		a.oneOf(at, "crawler", f.Crawler, flowCrawlers...)
	}
	if len(c.Blocks) == 0 {
		l.diags = append(l.diags, errAt(b.DefRange, "Empty flow", fmt.Sprintf("flow %q has no step blocks.", name)))
	}
	outputs := map[string]bool{}
	for _, sb := range c.Blocks {
		if st, ok := l.decodeStep(name, f.Crawler, sb, outputs, &f.creds); ok {
			f.Steps = append(f.Steps, st)
		}
	}
	if ok {
		l.cfg.Flows = append(l.cfg.Flows, f)
	}
}

func (l *loader) decodeStep(flow, crawler string, b *hcl.Block, outputs map[string]bool, creds *[]flowCred) (flowstep.Step, bool) {
	// Source is "file:line" of the step, for the crawler's error messages.
	st := flowstep.Step{Action: b.Labels[0], Source: fmt.Sprintf("%s:%d", b.DefRange.Filename, b.DefRange.Start.Line)}
	spec, known := flowActions[st.Action]
	if !known {
		names := make([]string, 0, len(flowActions))
		for n := range flowActions {
			names = append(names, n)
		}
		sortStrings(names)
		l.diags = append(l.diags, errAt(b.LabelRanges[0], "Unknown step",
			fmt.Sprintf("%q is not a step; use one of %s.", st.Action, strings.Join(names, ", "))+didYouMean(st.Action, names)))
		return st, false
	}
	if crawler != "" && !strings.Contains(spec.crawlers, crawler) {
		l.diags = append(l.diags, errAt(b.LabelRanges[0], "Step not supported by the crawler",
			fmt.Sprintf("flow %q is for the %s crawler, which has no %q step (it is for: %s).", flow, crawler, st.Action, spec.crawlers)))
	}
	schema := &hcl.BodySchema{}
	for _, n := range stepAttrNames {
		schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: n})
	}
	c := l.content(b.Body, schema)
	allowed := map[string]bool{}
	for _, n := range append(append([]string{}, spec.required...), spec.allowed...) {
		allowed[n] = true
	}
	if st.Action == "fill" || st.Action == "select" || st.Action == "click" || st.Action == "wait_for" {
		allowed["selector"] = true
	}
	for _, at := range sortedAttrs(c.Attributes) {
		if !allowed[at.Name] {
			l.diags = append(l.diags, errAt(at.NameRange, "Unsupported step attribute",
				fmt.Sprintf("A %q step has no %q attribute.", st.Action, at.Name)))
		}
	}
	for _, n := range spec.required {
		if _, ok := c.Attributes[n]; !ok {
			l.diags = append(l.diags, errAt(b.DefRange, "Missing step attribute",
				fmt.Sprintf("A %q step needs %s.", st.Action, n)))
		}
	}
	a := l.attrs(c.Attributes)
	strAttrs := map[string]*string{"selector": &st.Selector, "value": &st.Value, "url": &st.URL, "attribute": &st.Attribute,
		"output": &st.Output, "method": &st.Method, "json": &st.JSON, "regex": &st.Regex, "json_path": &st.JSONPath,
		"state": &st.State, "text_contains": &st.TextContains, "message": &st.Message}
	for n, dst := range strAttrs {
		if at := a.str(n, dst); at != nil {
			l.checkVars(at, *dst, outputs, creds)
		}
	}
	if at := a.str("state", &st.State); at != nil {
		a.oneOf(at, "state", st.State, "present", "absent")
	}
	if at := a.str("regex", &st.Regex); at != nil {
		if _, err := regexp.Compile(st.Regex); err != nil {
			a.errorf(at.Expr.Range(), "Invalid regex", "%v.", err)
		}
	}
	a.dur("timeout", &st.Timeout)
	if at := a.int("status", &st.Status); at != nil && (st.Status < 100 || st.Status > 599) {
		a.errorf(at.Expr.Range(), "Invalid status", "status = %d is not an HTTP status code.", st.Status)
	}
	if at, v := a.value("data_error", cty.Bool); at != nil {
		st.DataError = v.True()
	}
	st.Form = l.stringMap(a, "form", outputs, creds)
	st.Headers = l.stringMap(a, "headers", outputs, creds)
	if st.Action == "extract" || st.Action == "assert" {
		if st.Selector == "" && st.Regex == "" && st.JSONPath == "" && st.Action == "extract" {
			l.diags = append(l.diags, errAt(b.DefRange, "Missing step attribute", "An extract step needs selector, regex or json_path."))
		}
	}
	// A password typed into the flow would sit in git: only credentials.
	if st.Action == "fill" && strings.Contains(strings.ToLower(st.Selector), "password") && !strings.Contains(st.Value, "{{credentials.") {
		if at := c.Attributes["value"]; at != nil {
			l.diags = append(l.diags, errAt(at.Expr.Range(), "Secret given as a literal",
				"A password field must be filled from run-time credentials, e.g. value = \"{{credentials.etax.password}}\"; secrets never go into configuration files."))
		}
	}
	if st.Output != "" && (st.Action == "extract" || st.Action == "screenshot") {
		outputs[st.Output] = true
	}
	return st, true
}

// stringMap decodes a map of strings (form fields, headers).
func (l *loader) stringMap(a attrs, name string, outputs map[string]bool, creds *[]flowCred) map[string]string {
	at, v := a.value(name, cty.Map(cty.String))
	if at == nil {
		return nil
	}
	var m map[string]string
	if err := gocty.FromCtyValue(v, &m); err != nil {
		a.errorf(at.Expr.Range(), "Incorrect attribute value type", "Inappropriate value for attribute %q: %s.", name, err)
		return nil
	}
	for _, k := range sortedKeys(m) {
		l.checkVars(at, m[k], outputs, creds)
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// checkVars reports malformed {{...}} references and outputs used before
// a step produced them, and records the credentials used.
func (l *loader) checkVars(at *hcl.Attribute, s string, outputs map[string]bool, creds *[]flowCred) {
	for _, m := range varRE.FindAllStringSubmatch(s, -1) {
		v := m[1]
		switch {
		case !varNameRE.MatchString(v):
			l.diags = append(l.diags, errAt(at.Expr.Range(), "Invalid flow variable",
				fmt.Sprintf("{{%s}} is not a variable: use {{input.PATH}}, {{credentials.NAME.FIELD}} or {{outputs.NAME}}.", v)))
		case strings.HasPrefix(v, "outputs.") && !outputs[strings.TrimPrefix(v, "outputs.")]:
			l.diags = append(l.diags, errAt(at.Expr.Range(), "Output used before it is extracted",
				fmt.Sprintf("{{%s}}: no earlier step of this flow extracts %q.", v, strings.TrimPrefix(v, "outputs."))))
		case strings.HasPrefix(v, "credentials."):
			rest := strings.TrimPrefix(v, "credentials.")
			name := rest[:strings.LastIndex(rest, ".")]
			*creds = append(*creds, flowCred{name: name, rng: at.Expr.Range()})
		}
	}
}

// checkFlows runs once every file is read: a crawler process needs a flow,
// and each credential its flow uses must be granted to the process.
func (l *loader) checkFlows() {
	flows := map[string]*Flow{}
	for i := range l.cfg.Flows {
		flows[l.cfg.Flows[i].Name] = &l.cfg.Flows[i]
	}
	for _, p := range l.cfg.Processes {
		f := flows[p.Flow]
		if f == nil {
			continue // undefined flows are reported with the other references
		}
		if p.Kind != "crawler" {
			l.diags = append(l.diags, errAt(p.DeclRange, "Flow on a non-crawler process",
				fmt.Sprintf("process %q runs flow %q, but only crawler processes run flows.", p.Name, p.Flow)))
			continue
		}
		if f.Crawler != "" && f.Crawler != p.Runner {
			l.diags = append(l.diags, errAt(p.DeclRange, "Flow for another crawler",
				fmt.Sprintf("process %q runs on the %s crawler, but flow %q is written for the %s crawler.", p.Name, p.Runner, f.Name, f.Crawler)))
		}
		granted := map[string]bool{}
		for _, c := range p.Credentials {
			granted[c] = true
		}
		for _, fc := range f.creds {
			if !granted[fc.name] {
				l.diags = append(l.diags, errAt(fc.rng, "Credential not granted",
					fmt.Sprintf("flow %q uses credential %q, which process %q does not list in credentials; robots receive only the credentials of their process.", f.Name, fc.name, p.Name)))
			}
		}
	}
}
