package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Bounds of what a plugin may declare about its configuration. A plugin
// is third-party code: its Info reply is input like any other, and it
// ends up in diagnostics, the daemon's memory and documentation.
const (
	MaxSchemaAttributes  = 128
	MaxAttributeName     = 64
	MaxAttributeDesc     = 1024
	MaxAttributeDefault  = 1024
	defaultSchemaTimeout = 10 * time.Second
)

// attrNameRE is an HCL identifier in the portable, lower-case form the
// built-in plugins use; anything else could not be written in a block.
var attrNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var attrTypes = []sdk.AttributeType{sdk.TypeString, sdk.TypeNumber, sdk.TypeBool, sdk.TypeDuration, sdk.TypeList}

// CheckSchema refuses a declared configuration schema that is too large,
// names an attribute twice or in a form HCL cannot write, or uses a type
// the daemon does not know.
func CheckSchema(attrs []sdk.ConfigAttribute) error {
	if len(attrs) > MaxSchemaAttributes {
		return fmt.Errorf("declares %d configuration attributes, over the limit of %d", len(attrs), MaxSchemaAttributes)
	}
	seen := make(map[string]bool, len(attrs))
	for i, a := range attrs {
		switch {
		case len(a.Name) > MaxAttributeName || !attrNameRE.MatchString(a.Name):
			return fmt.Errorf("configuration attribute %d: name %.80q is not a lower-case identifier of at most %d bytes", i, a.Name, MaxAttributeName)
		case seen[a.Name]:
			return fmt.Errorf("configuration attribute %q is declared twice", a.Name)
		case !slices.Contains(attrTypes, a.Type):
			return fmt.Errorf("configuration attribute %q: type %.40q is not one of string, number, bool, duration, list", a.Name, string(a.Type))
		case len(a.Description) > MaxAttributeDesc || !utf8.ValidString(a.Description):
			return fmt.Errorf("configuration attribute %q: description is not UTF-8 text of at most %d bytes", a.Name, MaxAttributeDesc)
		case len(a.Default) > MaxAttributeDefault || !utf8.ValidString(a.Default):
			return fmt.Errorf("configuration attribute %q: default is not UTF-8 text of at most %d bytes", a.Name, MaxAttributeDefault)
		}
		seen[a.Name] = true
	}
	return nil
}

type schemaKey struct {
	path  string
	mtime time.Time
	size  int64
}

// Schema returns the configuration schema plugin kind/name declares in its
// Info, found as a call would find it (the plugin directory first, then
// the built-ins). A built-in is read from Options.BuiltinInfo without
// starting anything. An executable is started just to read its Info, with
// Options.SchemaTimeout as the deadline, and stopped; the answer is cached
// by the executable's path, modification time and size, so a replaced
// plugin is read again. A plugin that crashes, hangs or declares
// something out of bounds (CheckSchema) is an error naming the plugin and
// its file; one that does not exist wraps ErrPluginNotFound and says where
// it was looked for.
func (h *Host) Schema(ctx context.Context, kind, name string) ([]sdk.ConfigAttribute, error) {
	path, args, err := h.find(kind, name)
	builtin := h.opts.Builtin != nil && h.opts.Builtin(kind, name)
	if err != nil && !(builtin && h.opts.BuiltinInfo != nil && errors.Is(err, ErrPluginNotFound)) {
		return nil, err
	}
	// A built-in's schema is in the table: no executable is needed to
	// read it, even where the daemon's own one is unknown.
	if (err != nil || len(args) > 0) && h.opts.BuiltinInfo != nil {
		info, err := h.opts.BuiltinInfo(ctx, kind, name)
		if err != nil {
			return nil, fmt.Errorf("built-in %s plugin %q: info: %w", kind, name, err)
		}
		return info.ConfigSchema, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s plugin %q: %w", kind, name, err)
	}
	key := schemaKey{path: path, mtime: st.ModTime(), size: st.Size()}
	if len(args) > 0 {
		key.path += " " + kind + " " + name // the daemon's own binary carries many
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	attrs, ok := h.schemas[key]
	if !ok {
		h.wg.Add(1) // Close waits for this start
	}
	h.mu.Unlock()
	if ok {
		return slices.Clone(attrs), nil
	}
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, h.opts.SchemaTimeout)
	defer cancel()
	log := h.log.With(kind, name, "purpose", "schema")
	inst, err := h.start(ctx, kind, name, log, h.opts.SchemaTimeout)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%s plugin %q (%s) did not describe its configuration within %s: %w", kind, name, path, h.opts.SchemaTimeout, err)
		}
		return nil, err
	}
	h.stop(inst, unhealthyStopTimeout)
	attrs = inst.info.ConfigSchema
	if err := CheckSchema(attrs); err != nil {
		return nil, fmt.Errorf("%w: %s plugin %q (%s) %v", ErrIncompatible, kind, name, path, err)
	}
	h.mu.Lock()
	h.schemas[key] = attrs
	h.mu.Unlock()
	return slices.Clone(attrs), nil
}
