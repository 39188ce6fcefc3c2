// Package quickstart is the configuration `rpacloud dev` runs when it is
// given none: rpacloud.hcl in this directory, embedded in the binary. It
// lives beside the command that uses it rather than under examples/ so that
// the product does not import its examples.
package quickstart

import (
	"embed"
	"io/fs"
)

//go:embed *.hcl
var files embed.FS

// Sources returns the quickstart files by name ("quickstart/rpacloud.hcl"),
// ready for config.LoadSources; the prefix makes diagnostics point at this
// directory.
func Sources() map[string][]byte {
	names, err := fs.Glob(files, "*.hcl")
	if err != nil {
		// The pattern is a constant; a failure is a programming error.
		panic("quickstart: " + err.Error())
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			panic("quickstart: read embedded " + n + ": " + err.Error())
		}
		out["quickstart/"+n] = b
	}
	return out
}
