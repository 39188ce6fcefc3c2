// Package examples holds runnable HCL configurations. The quickstart is
// embedded in the binary as the configuration of `rpacloud dev`.
package examples

import (
	"embed"
	"io/fs"
)

// Quickstart holds quickstart/*.hcl.
//
//go:embed quickstart/*.hcl
var Quickstart embed.FS

// QuickstartSources returns the quickstart files by name
// ("quickstart/rpacloud.hcl"), ready for config.LoadSources.
func QuickstartSources() map[string][]byte {
	names, err := fs.Glob(Quickstart, "quickstart/*.hcl")
	if err != nil {
		// The pattern is a constant; a failure is a programming error.
		panic("examples: " + err.Error())
	}
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		b, err := Quickstart.ReadFile(n)
		if err != nil {
			panic("examples: read embedded " + n + ": " + err.Error())
		}
		out[n] = b
	}
	return out
}
