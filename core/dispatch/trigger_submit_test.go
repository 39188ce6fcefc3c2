package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
)

// Only a second batch of the same scheduled run is ErrAlreadySubmitted; a
// trigger's batch that breaks another constraint (here a customer that does
// not exist: a foreign key) is an error, not a run that counts as fired.
func TestSubmitTriggerRunOnlyUniqueIsAlreadySubmitted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, 0, 0)
		ctx := context.Background()
		at := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
		tr := db.Trigger.Create().SetName("t").SetCustomerID(f.cust.ID).
			SetProcessID(db.Process.Query().OnlyIDX(sys())).SetCron("0 2 * * *").SetTimezone("UTC").SaveX(sys())
		req := dispatch.SubmitRequest{CustomerID: 999999, Process: "echo", Inputs: inputs(1), TriggerID: &tr.ID, ScheduledFor: &at}
		_, err := f.q.Submit(ctx, req)
		if err == nil || errors.Is(err, dispatch.ErrAlreadySubmitted) {
			t.Fatalf("a batch of a customer that does not exist: %v, want an error other than ErrAlreadySubmitted", err)
		}
		req.CustomerID = f.cust.ID
		if _, err := f.q.Submit(ctx, req); err != nil {
			t.Fatal(err)
		}
		if _, err := f.q.Submit(ctx, req); !errors.Is(err, dispatch.ErrAlreadySubmitted) {
			t.Fatalf("a second batch of the same run: %v, want ErrAlreadySubmitted", err)
		}
	})
}
