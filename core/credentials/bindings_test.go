package credentials_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rpacloud/rpacloud/core/config"
	"github.com/rpacloud/rpacloud/core/credentials"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent/privacy"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
)

func TestBindings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sys := privacy.DecisionContext(ctx, privacy.Allow)
		fin := db.Customer.Create().SetName("acme-finance").SaveX(sys)
		hrC := db.Customer.Create().SetName("acme-hr").SaveX(sys)
		pl := db.Pool.Create().SetName("p").SetProvider("local").SaveX(sys)
		vat := db.Process.Create().SetName("vat").SetPoolID(pl.ID).SetOwnerID(fin.ID).SaveX(sys)
		pay := db.Process.Create().SetName("payroll").SetPoolID(pl.ID).SetOwnerID(hrC.ID).SaveX(sys)
		orphan := db.Process.Create().SetName("orphan").SetPoolID(pl.ID).SaveX(sys)
		b := credentials.NewBindings(db.Client, &config.Config{Processes: []config.Process{
			{Name: "vat", Credentials: []string{"etax/acme"}},
			{Name: "orphan", Credentials: []string{"x"}},
		}})

		for range 2 { // binding twice is one binding
			if err := b.Bind(ctx, fin, "bank/pay", "vat", "op"); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Bind(ctx, fin, "bank/pay", "payroll", "op"); !errors.Is(err, secret.ErrBadInput) {
			t.Errorf("binding to another department's process: %v", err)
		}
		if err := b.Bind(ctx, fin, "bank/pay", "nope", "op"); !errors.Is(err, secret.ErrBadInput) {
			t.Errorf("binding to a missing process: %v", err)
		}
		got, err := b.ForProcess(ctx, vat.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, g := range got {
			names = append(names, g.Name+"@"+g.Ref.Customer)
		}
		if strings.Join(names, " ") != "bank/pay@acme-finance etax/acme@acme-finance" {
			t.Errorf("ForProcess(vat) = %v", names)
		}
		if got, err := b.ForProcess(ctx, pay.ID); err != nil || len(got) != 0 {
			t.Errorf("ForProcess(payroll) = %v, %v", got, err)
		}
		if _, err := b.ForProcess(ctx, orphan.ID); err == nil || !strings.Contains(err.Error(), "no owner") {
			t.Errorf("ForProcess(orphan): %v", err)
		}
		if procs, err := b.Processes(ctx, fin, "etax/acme"); err != nil || strings.Join(procs, ",") != "vat" {
			t.Errorf("Processes(etax/acme) = %v, %v", procs, err)
		}
		if err := b.Unbind(ctx, fin, "etax/acme", "vat"); !errors.Is(err, secret.ErrBadInput) {
			t.Errorf("unbinding an HCL binding: %v", err)
		}
		if err := b.Unbind(ctx, fin, "bank/pay", "vat"); err != nil {
			t.Fatal(err)
		}
		if procs, _ := b.Processes(ctx, fin, "bank/pay"); len(procs) != 0 {
			t.Errorf("after unbind: %v", procs)
		}
		if err := b.Bind(ctx, fin, "bank/pay", "vat", "op"); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteAll(ctx, fin, "bank/pay"); err != nil {
			t.Fatal(err)
		}
		if n := db.CredentialBinding.Query().CountX(sys); n != 0 {
			t.Errorf("%d bindings left after DeleteAll", n)
		}
	})
}
