// Package flowstep holds the one type of a crawler flow's step, shared by
// the configuration loader (core/config produces it from HCL) and the
// plugin SDK (sdk.Step is an alias, sent to crawler plugins). It imports
// the standard library only, so config does not link the SDK's gRPC. A
// step attribute is added here, decoded in core/config/flow.go and carried
// over the wire in plugins/sdk/convert.go.
package flowstep

import "time"

// Step is one step of a flow. String fields may contain {{input.x}},
// {{credentials.name.field}} and {{outputs.x}}.
type Step struct {
	Action    string
	Selector  string // CSS selector (browser; HTTP extract/assert on HTML)
	Value     string // fill/select: the value
	URL       string // navigate/request
	Attribute string // extract: an attribute instead of the text
	Output    string // extract/screenshot: the output (or artefact) name
	Timeout   time.Duration
	// HTTP request.
	Method  string
	Form    map[string]string
	JSON    string
	Headers map[string]string
	// HTTP extract/assert: a regular expression (first group) or a JSON
	// path (dot-separated) over the last response body.
	Regex    string
	JSONPath string
	// HTTP assert: the last response's status code; 0 = any 2xx.
	Status int
	// Assert.
	State        string // "present" (default) or "absent"
	TextContains string
	DataError    bool // a failed assert means the target rejected the data
	Message      string
	Source       string // file:line of the step, for messages
}
