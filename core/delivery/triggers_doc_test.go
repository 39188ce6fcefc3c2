package delivery

import (
	"context"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/documents"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// The run schedule lists the pool's triggers; a department's reader sees
// its own in full and another department's as run times only: no name,
// process, department or cron of it reaches the document (the triggers
// query answers such a name NOT_FOUND). An administrator sees every one.
func TestScheduleDocumentHidesOtherDepartmentsTriggers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		cfg, diags, _ := config.LoadSources(map[string][]byte{"test.hcl": []byte(cfgHCL + `
process "LEAKB-flow" {
  pool    = "tax-rpa"
  builtin = "echo"
  owner   = "other"
}
trigger "LEAKB-trig" {
  process = "LEAKB-flow"
  cron    = "17 3 * * *"
}
trigger "own-trig" {
  process = "vat-filing"
  cron    = "0 9 * * *"
  slot    = "morning"
}
`)})
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		f.svc.Config = cfg
		ctx := context.Background()
		for _, format := range []documents.Format{documents.Markdown, documents.HTML} {
			doc, err := f.svc.Render(ctx, f.biz, "vat-filing", documents.Schedule, format, documents.Chinese)
			if err != nil {
				t.Fatal(err)
			}
			s := string(doc)
			for _, leak := range []string{"LEAKB", "17 3 * * *"} {
				if strings.Contains(s, leak) {
					t.Errorf("%s: a viewer of acme-finance reads %q of another department's trigger", format, leak)
				}
			}
			if !strings.Contains(s, "own-trig") || !strings.Contains(s, "其他部门的运行") {
				t.Errorf("%s: want its own trigger in full and the other as an anonymous row:\n%s", format, s)
			}
			doc, err = f.svc.Render(ctx, f.admin, "vat-filing", documents.Schedule, format, documents.Chinese)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(doc), "LEAKB-trig") {
				t.Errorf("%s: an administrator does not see every trigger of the pool", format)
			}
		}
	})
}
