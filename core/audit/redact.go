package audit

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/rpacloud/rpacloud/core/textlimit"
	entschema "github.com/rpacloud/rpacloud/ent/schema"
)

// Redacted replaces every argument value not classified as safe.
const Redacted = "[redacted]"

// Class is what an entry keeps of one argument value.
type Class int

// Classes. The zero Class redacts, so a value nobody classified is never
// recorded in clear.
const (
	// Hide: the value is replaced by Redacted.
	Hide Class = iota
	// Keep: the value is recorded (texts cut to 200 bytes).
	Keep
	// Measure: only a text's size is recorded, "[redacted: N bytes]"
	// (configuration files: their size tells what changed, their content
	// may hold a secret).
	Measure
)

// Bounds of one entry's arguments, so that an entry stays small whatever
// was sent: long texts are cut, long lists keep their first items.
const (
	maxText = 200
	maxList = 20
)

// Redact returns the JSON of args with every leaf value replaced as its
// path's class says. A path names argument and input
// fields by dots, and list items by "[]": "input.items[].name". Deciding
// by path, with redaction the default, means a field nobody classified is
// never recorded in clear. Lists are walked item by item; an object is
// walked only when its path is classified Keep (an input object), and
// redacted whole otherwise (a JSON value, whose keys may be data too). The result fits the
// storage bound; when even the cut arguments do not, only their names are
// kept.
func Redact(args map[string]any, classify func(path string) Class) string {
	v := redact("", args, classify)
	b, err := json.Marshal(v)
	if err == nil && len(b) <= entschema.AuditArgumentsMax {
		return string(b)
	}
	names := make([]string, 0, len(args))
	for k := range args {
		names = append(names, k)
	}
	sort.Strings(names)
	b, _ = json.Marshal(map[string]any{"_omitted": fmt.Sprintf("arguments over %d bytes", entschema.AuditArgumentsMax), "_names": names})
	if len(b) > entschema.AuditArgumentsMax {
		return `{"_omitted":"arguments too large"}`
	}
	return string(b)
}

func redact(path string, v any, classify func(string) Class) any {
	switch x := v.(type) {
	case map[string]any:
		if path != "" && classify(path) != Keep {
			// An object the classifier does not walk into (a JSON
			// value): its keys may be data too.
			return Redacted
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out[k] = redact(p, e, classify)
		}
		return out
	case []any:
		n := min(len(x), maxList)
		out := make([]any, 0, n+1)
		for _, e := range x[:n] {
			out = append(out, redact(path+"[]", e, classify))
		}
		if len(x) > n {
			out = append(out, fmt.Sprintf("… %d more", len(x)-n))
		}
		return out
	case nil:
		return nil
	}
	switch classify(path) {
	case Keep:
		if s, ok := v.(string); ok {
			return textlimit.Cut(s, maxText)
		}
		return v
	case Measure:
		if s, ok := v.(string); ok {
			return fmt.Sprintf("[redacted: %d bytes]", len(s))
		}
	}
	return Redacted
}

// ConfigFilesClass classifies the arguments of a configuration given as
// files ("files[].name", "files[].content"), one rule for every way one is
// applied (applyConfig, a reload by SIGHUP): a file is recorded by its
// name and size, never its content, which may hold what a department
// keeps to itself. Any other path is Hide.
func ConfigFilesClass(path string) Class {
	switch path {
	case "files", "files[]", "files[].name":
		return Keep
	case "files[].content":
		return Measure
	}
	return Hide
}

// ConfigFiles is the arguments of an entry for a configuration applied
// from files (path → content), as applyConfig records its own: the files
// by base name, in name order, each with its size (ConfigFilesClass).
func ConfigFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	byName := make(map[string]string, len(files))
	for path, b := range files {
		n := filepath.Base(path)
		names = append(names, n)
		byName[n] = string(b)
	}
	sort.Strings(names)
	list := make([]any, 0, len(names))
	for _, n := range names {
		list = append(list, map[string]any{"name": n, "content": byName[n]})
	}
	return Redact(map[string]any{"files": list}, ConfigFilesClass)
}
