package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version may be set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build information is used.
var version = ""

// versionInfo is what `rpacloud version -o json` prints.
type versionInfo struct {
	Version string `json:"version"`          // module version; "(devel)" for a build without one
	Commit  string `json:"commit,omitempty"` // VCS revision the binary was built from
	Time    string `json:"time,omitempty"`   // commit time, RFC 3339
	Dirty   bool   `json:"dirty"`            // built with uncommitted changes
	Go      string `json:"go"`               // Go toolchain version
}

// buildVersion reads the version and VCS stamp `go build` puts into the
// binary. Builds without them (go test, -buildvcs=false, outside a
// repository) still answer, with "(devel)" and no commit.
func buildVersion() versionInfo {
	v := versionInfo{Version: "(devel)", Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Dirty = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	return v
}

// String is the one-line form: version, then commit, time and dirty mark
// when known.
func (v versionInfo) String() string {
	var extra []string
	if v.Commit != "" {
		c := v.Commit
		if v.Dirty {
			c += "+dirty"
		}
		extra = append(extra, "commit "+c)
	}
	if v.Time != "" {
		extra = append(extra, v.Time)
	}
	extra = append(extra, v.Go)
	return fmt.Sprintf("%s (%s)", v.Version, strings.Join(extra, ", "))
}

func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "print the version, VCS commit and Go version of this binary",
		Args:  cobra.NoArgs,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		v := buildVersion()
		if out.JSON() {
			return exit(printJSON(cmd.OutOrStdout(), cmd.ErrOrStderr(), v))
		}
		fmt.Fprintln(cmd.OutOrStdout(), "rpacloud", v)
		return nil
	}
	return cmd
}
