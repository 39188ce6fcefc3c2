// Command jobcheck parses a Nomad job file with Nomad's own HCL2 job
// parser (jobspec2), strictly, and prints the job as Nomad's API JSON. It
// is a module of its own because jobspec2 needs Nomad's fork of hcl/v2,
// which rpacloud's configuration loader cannot share; deploy's test builds
// it once into ~/.cache/rpacloud/bin and checks the JSON.
//
//	jobcheck [-var NAME=VALUE]... FILE
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/nomad/jobspec2"
)

type vars []string

func (v *vars) String() string     { return fmt.Sprint(*v) }
func (v *vars) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	var vs vars
	flag.Var(&vs, "var", "a job variable, NAME=VALUE (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: jobcheck [-var NAME=VALUE]... FILE")
		os.Exit(2)
	}
	path := flag.Arg(0)
	src, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	job, err := jobspec2.ParseWithConfig(&jobspec2.ParseConfig{
		Path: path, Body: src, ArgVars: vs,
		Strict:  true,  // an unknown block or attribute is an error
		AllowFS: false, // the job reads no files beside it
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(1)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(job); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
