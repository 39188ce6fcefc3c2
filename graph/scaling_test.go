package graph_test

import (
	"context"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/ent/privacy"
	"github.com/rpacloud/rpacloud/ent/scaledecision"
)

// The scaler's readings and decisions are readable through the API, newest
// first, filtered by pool.
func TestScaleDecisions(t *testing.T) {
	e := newEnv(t)
	ctx := privacy.DecisionContext(context.Background(), privacy.Allow)
	p := e.db.Pool.Query().OnlyX(ctx)
	t0 := time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC)
	for i, a := range []scaledecision.Action{scaledecision.ActionNone, scaledecision.ActionScaleUp, scaledecision.ActionCooldown} {
		e.db.ScaleDecision.Create().SetAt(t0.Add(time.Duration(i) * 30 * time.Second)).SetPoolID(p.ID).SetPoolName(p.Name).
			SetX(2).SetZ(0).SetD(50).SetAction(a).SetRent(3 * i % 2).SetTarget(2).SetReason("reason " + string(a)).SaveX(ctx)
	}
	e.db.ScaleDecision.Create().SetPoolID(p.ID).SetPoolName("other").SetX(1).SetZ(1).SetD(0).
		SetAction(scaledecision.ActionNone).SetTarget(1).SetReason("other pool").SaveX(ctx)

	var out struct {
		ScaleDecisions struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					Action        string
					X, Z, D, Rent int
					Reason        string
				}
			}
		}
	}
	q := `query($p:String){scaleDecisions(pool:$p, first:10){totalCount edges{node{action x z d rent reason}}}}`
	if err := e.view.Do(context.Background(), q, map[string]any{"p": "p"}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.ScaleDecisions
	if got.TotalCount != 3 || len(got.Edges) != 3 {
		t.Fatalf("got %d decisions, want 3: %+v", got.TotalCount, got)
	}
	if n := got.Edges[0].Node; n.Action != "cooldown" || n.Reason != "reason cooldown" {
		t.Fatalf("newest first: %+v", n)
	}
	if n := got.Edges[1].Node; n.Action != "scale_up" || n.X != 2 || n.D != 50 {
		t.Fatalf("second: %+v", n)
	}
}
