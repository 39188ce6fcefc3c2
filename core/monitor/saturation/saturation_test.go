package saturation

import (
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

func TestCompute(t *testing.T) {
	released := ago(30 * time.Minute)
	robots := []Robot{
		{ID: 1, Name: "a", Pool: "p", Vendor: "uipath", From: ago(48 * time.Hour)},
		{ID: 2, Name: "b", Pool: "p", Vendor: "uipath", From: ago(48 * time.Hour)},
		{ID: 3, Name: "c", Pool: "q", From: ago(48 * time.Hour), Until: &released},
		{ID: 4, Name: "d", Pool: "q", From: ago(10 * time.Minute)},
	}
	busy := []Busy{
		{RobotID: 1, Start: ago(2 * time.Hour), End: ago(30 * time.Minute)},    // clipped to 30 min in the hour
		{RobotID: 1, Start: ago(40 * time.Minute), End: ago(20 * time.Minute)}, // overlaps: merged
		{RobotID: 2, Start: ago(25 * time.Minute)},                             // still running
		{RobotID: 3, Start: ago(45 * time.Minute), End: ago(30 * time.Minute)},
		{RobotID: 99, Start: ago(time.Minute)}, // unknown robot: ignored
	}
	rep := Compute(now, time.Hour, robots, busy, Options{})
	want := map[string]struct {
		busy, avail time.Duration
		idle        bool
	}{
		"a": {40 * time.Minute, time.Hour, false},
		"b": {25 * time.Minute, time.Hour, false},
		"c": {15 * time.Minute, 30 * time.Minute, false},
		"d": {0, 10 * time.Minute, true},
	}
	if len(rep.Robots) != 4 {
		t.Fatalf("robots: %+v", rep.Robots)
	}
	for _, u := range rep.Robots {
		w := want[u.Key]
		if u.Busy != w.busy || u.Available != w.avail || u.Idle != w.idle {
			t.Errorf("%s: busy %s avail %s idle %v; want %+v", u.Key, u.Busy, u.Available, u.Idle, w)
		}
	}
	if rep.Robots[0].Key != "a" {
		t.Errorf("busiest first: %s", rep.Robots[0].Key)
	}
	if len(rep.Pools) != 2 || rep.Pools[0].Key != "p" || rep.Pools[0].Busy != 65*time.Minute || rep.Pools[0].Peak != 2 {
		t.Fatalf("pools: %+v", rep.Pools)
	}
	// 65 busy minutes in an hour at 80% need two robots, and two ran
	// at once.
	if rep.Pools[0].Recommended != 2 {
		t.Errorf("pool p recommended %d", rep.Pools[0].Recommended)
	}
	if len(rep.Vendors) != 2 || rep.Vendors[0].Key != "rpacloud" || rep.Vendors[1].Key != "uipath" || rep.Vendors[1].Robots != 2 {
		t.Fatalf("vendors: %+v", rep.Vendors)
	}
}

func TestRecommend(t *testing.T) {
	cases := []struct {
		busy, window time.Duration
		target       float64
		peak, want   int
	}{
		{0, time.Hour, 0.8, 0, 0},
		{time.Minute, time.Hour, 0.8, 1, 1},
		{10 * time.Hour, 24 * time.Hour, 0.8, 1, 1},
		{48 * time.Hour, 24 * time.Hour, 0.8, 3, 3},      // 2.5 → 3
		{5 * 24 * time.Hour, 24 * time.Hour, 0.5, 2, 10}, // load of 5 robots at 50%
		{time.Hour, 24 * time.Hour, 0.8, 10, 8},          // a burst of 10 keeps 8
		{time.Hour, 0, 0.8, 1, 0},
	}
	for _, c := range cases {
		if got := Recommend(c.busy, c.window, c.target, c.peak); got != c.want {
			t.Errorf("Recommend(%s, %s, %.1f, %d) = %d, want %d", c.busy, c.window, c.target, c.peak, got, c.want)
		}
	}
}

func TestPeakBackToBack(t *testing.T) {
	s := []span{{ago(2 * time.Hour), ago(time.Hour)}, {ago(time.Hour), ago(0)}}
	if p := peak(s); p != 1 {
		t.Fatalf("back-to-back spans peak %d", p)
	}
}

func TestSeries(t *testing.T) {
	robots := []Robot{{ID: 1, Name: "a", Pool: "p", From: ago(48 * time.Hour)}, {ID: 2, Name: "b", Pool: "late", From: ago(30 * time.Minute)}}
	busy := []Busy{{RobotID: 1, Start: ago(90 * time.Minute), End: ago(60 * time.Minute)}}
	s := Series(now, 2*time.Hour, 4, robots, busy)
	if len(s["p"]) != 4 || len(s["late"]) != 4 {
		t.Fatalf("series lengths: %v", s)
	}
	wantP := []float64{0, 1, 0, 0}
	for i, pt := range s["p"] {
		if pt.Utilisation != wantP[i] {
			t.Errorf("p[%d] = %.2f, want %.2f", i, pt.Utilisation, wantP[i])
		}
	}
	if !s["p"][0].At.Equal(ago(2 * time.Hour)) {
		t.Errorf("first bucket at %s", s["p"][0].At)
	}
}
