package config

import (
	"context"
	"sort"

	"github.com/hashicorp/hcl/v2"
)

// Report is the outcome of validating a configuration as data: what
// `rpacloud validate -o json` prints. ValidateCommand prints the same
// outcome as text. The JSON field names are part of the CLI's interface.
type Report struct {
	OK          bool            `json:"ok"` // no errors (warnings allowed)
	Files       []string        `json:"files"`
	Errors      int             `json:"errors"`
	Warnings    int             `json:"warnings"`
	Diagnostics []ReportProblem `json:"diagnostics"`
	Inventory   map[string]int  `json:"inventory"` // blocks by kind (provider, network, pool, process, vendor, customer, vault) when OK
}

// ReportProblem is one diagnostic. It carries no source snippet: a
// snippet may hold a secret, which the text form masks.
type ReportProblem struct {
	Severity string `json:"severity"` // "error" or "warning"
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
}

// Validate loads every path as one configuration and reports on it,
// checking plugins with plugins (may be nil) as LoadWith does.
func Validate(ctx context.Context, plugins PluginSchemas, paths ...string) Report {
	cfg, diags, files := LoadWith(ctx, plugins, paths...)
	r := Report{Files: []string{}, Diagnostics: []ReportProblem{}, Inventory: map[string]int{}}
	for name := range files {
		r.Files = append(r.Files, name)
	}
	sort.Strings(r.Files)
	r.Errors, r.Warnings = count(diags)
	r.OK = r.Errors == 0
	for _, d := range diags {
		p := ReportProblem{Severity: "error", Summary: oneLine(d.Summary), Detail: oneLine(d.Detail)}
		if d.Severity == hcl.DiagWarning {
			p.Severity = "warning"
		}
		if d.Subject != nil {
			p.File, p.Line, p.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		r.Diagnostics = append(r.Diagnostics, p)
	}
	if cfg != nil && r.OK {
		for kind, n := range map[string]int{"provider": len(cfg.Providers), "network": len(cfg.Networks), "pool": len(cfg.Pools),
			"process": len(cfg.Processes), "vendor": len(cfg.Vendors), "customer": len(cfg.Customers),
			"calendar": len(cfg.Calendars), "trigger": len(cfg.Triggers)} {
			if n > 0 {
				r.Inventory[kind] = n
			}
		}
		if cfg.Vault != nil {
			r.Inventory["vault"] = 1
		}
	}
	return r
}
