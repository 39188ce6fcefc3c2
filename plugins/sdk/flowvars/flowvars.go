// Package flowvars expands the variables of flow steps: {{input.PATH}}
// (the task's JSON input; PATH is dot-separated, numbers index arrays),
// {{credentials.NAME.FIELD}} (run-time credentials; NAME may contain '/'
// and '.', FIELD is after the last dot) and {{outputs.NAME}}
// (values extracted by earlier steps). It also remembers which secret
// values it handed out, so error messages can be scrubbed of them.
package flowvars

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Vars are the variables of one run.
type Vars struct {
	input   any
	creds   map[string]map[string]string
	Outputs map[string]string
	secrets map[string]bool
}

// New parses the task input. An input that is not JSON is an error the
// caller should classify as a data error.
func New(input []byte, creds map[string]map[string]string) (*Vars, error) {
	v := &Vars{creds: creds, Outputs: map[string]string{}, secrets: map[string]bool{}}
	if len(strings.TrimSpace(string(input))) > 0 {
		if err := json.Unmarshal(input, &v.input); err != nil {
			return nil, fmt.Errorf("task input is not JSON: %v", err)
		}
	}
	for _, fields := range creds {
		for _, val := range fields {
			if len(val) >= 3 { // shorter values would scrub ordinary text
				v.secrets[val] = true
			}
		}
	}
	return v, nil
}

var ref = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.\-/]+)\s*\}\}`)

// MissingError is a variable the flow uses that the run does not have.
type MissingError struct{ Name string }

func (e *MissingError) Error() string { return fmt.Sprintf("variable %s is not set", e.Name) }

// Expand replaces every {{...}} in s. A missing input or output variable
// is a *MissingError; a missing credential names the credential, never a
// value.
func (v *Vars) Expand(s string) (string, error) {
	var firstErr error
	out := ref.ReplaceAllStringFunc(s, func(m string) string {
		name := ref.FindStringSubmatch(m)[1]
		val, err := v.lookup(name)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return val
	})
	return out, firstErr
}

// ExpandMap expands every value of m.
func (v *Vars) ExpandMap(m map[string]string) (map[string]string, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		e, err := v.Expand(val)
		if err != nil {
			return nil, err
		}
		out[k] = e
	}
	return out, nil
}

func (v *Vars) lookup(name string) (string, error) {
	root, rest, _ := strings.Cut(name, ".")
	switch root {
	case "input":
		cur := v.input
		if rest == "" {
			b, _ := json.Marshal(cur)
			return string(b), nil
		}
		for _, part := range strings.Split(rest, ".") {
			switch c := cur.(type) {
			case map[string]any:
				val, ok := c[part]
				if !ok {
					return "", &MissingError{Name: name}
				}
				cur = val
			case []any:
				i, err := strconv.Atoi(part)
				if err != nil || i < 0 || i >= len(c) {
					return "", &MissingError{Name: name}
				}
				cur = c[i]
			default:
				return "", &MissingError{Name: name}
			}
		}
		switch c := cur.(type) {
		case string:
			return c, nil
		case nil:
			return "", nil
		case float64:
			return strconv.FormatFloat(c, 'f', -1, 64), nil
		default:
			b, _ := json.Marshal(c)
			return string(b), nil
		}
	case "credentials":
		// Credential names may contain dots and slashes ("etax/acme.cn"):
		// the field is after the last dot.
		i := strings.LastIndex(rest, ".")
		ok := i > 0
		cname, field := rest, ""
		if ok {
			cname, field = rest[:i], rest[i+1:]
		}
		fields, have := v.creds[cname]
		if !ok || !have {
			return "", fmt.Errorf("credential %q is not available to this task", cname)
		}
		val, have := fields[field]
		if !have {
			return "", fmt.Errorf("credential %q has no field %q", cname, field)
		}
		return val, nil
	case "outputs":
		val, ok := v.Outputs[rest]
		if !ok {
			return "", &MissingError{Name: name}
		}
		return val, nil
	}
	return "", fmt.Errorf("unknown variable %s: use input.*, credentials.*.* or outputs.*", name)
}

// IsSecret reports whether s is, or contains, a credential value.
func (v *Vars) IsSecret(s string) bool {
	for sec := range v.secrets {
		if strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

// Scrub replaces every credential value in s with "***", longest first so
// a value containing another is scrubbed whole.
func (v *Vars) Scrub(s string) string {
	keys := make([]string, 0, len(v.secrets))
	for k := range v.secrets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, "***")
	}
	return s
}
