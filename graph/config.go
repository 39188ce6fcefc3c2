package graph

import (
	"context"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/graph/model"
)

// ConfigApplier applies configuration files to the running daemon
// (cmd/rpacloud/daemon's Reload): load and validate whole, plan, refuse
// what needs a restart, apply. by names who applied it, for the event.
//
// planHash, when not "", is the config.Plan.Hash of the plan the caller
// showed: the applier refuses when the plan now differs.
type ConfigApplier interface {
	ReloadPlanned(ctx context.Context, by string, files map[string][]byte, dryRun bool, planHash string) (*config.Outcome, error)
}

// configPlan is the API's form of a reload's outcome; a refusal is part
// of the answer (error and diagnostics), so a client shows the plan and
// the located problems together.
func configPlan(out *config.Outcome, err error) *model.ConfigPlan {
	res := &model.ConfigPlan{Changes: []*model.ConfigChange{}, Diagnostics: []*model.ConfigDiagnostic{}}
	if err != nil {
		msg := err.Error()
		res.Error = &msg
	}
	if out == nil {
		res.Summary, res.Text = "nothing planned", ""
		return res
	}
	res.Applied = out.Applied
	res.Summary, res.Text, res.PlanHash = out.Plan.Summary(), out.Plan.String(), out.Plan.Hash()
	if out.Diagnostics.HasErrors() {
		res.Summary, res.Text = "nothing planned: the configuration is invalid", ""
	}
	for _, c := range out.Plan.Changes {
		mc := &model.ConfigChange{Kind: c.Kind, Name: c.Name, Action: string(c.Action), Attributes: []*model.ConfigAttributeChange{}}
		for _, a := range c.Attributes {
			mc.Attributes = append(mc.Attributes, &model.ConfigAttributeChange{Name: a.Name, Old: a.Old, New: a.New})
		}
		if c.Restart != "" {
			mc.Restart = &c.Restart
		}
		if c.Note != "" {
			mc.Note = &c.Note
		}
		res.Changes = append(res.Changes, mc)
	}
	for _, d := range out.Diagnostics {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		loc := ""
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		res.Diagnostics = append(res.Diagnostics, &model.ConfigDiagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Location: loc})
	}
	return res
}
