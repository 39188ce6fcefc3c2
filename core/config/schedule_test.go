package config

import (
	"os"
	"testing"
	"time"

	"github.com/rpacloud/rpacloud/core/trigger/when"
)

// A trigger filtered through a calendar keeps firing across every holiday
// of the example calendar: a long holiday is dropped day by day, not
// cron time by cron time (a bound in cron times gave up inside the
// Spring Festival and the trigger never fired again).
func TestScheduleCrossesLongHolidays(t *testing.T) {
	f, err := os.Open("../../examples/tax-filing/calendars/cn-2026.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	days, errs := when.ParseCalendarDays(f)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cal := &when.Calendar{Weekend: map[time.Weekday]bool{time.Saturday: true, time.Sunday: true}, Days: days}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	for _, expr := range []string{"* * * * *", "*/2 * * * *", "* 9-17 * * *", "*/5 * * * *", "0 2 * * *"} {
		for _, filter := range []when.Days{when.Working, when.NonWorking} {
			s := when.Schedule{Cron: MustParseCron(expr), Loc: sh, Cal: cal, Days: filter}
			for d := time.Date(2026, 1, 1, 0, 0, 0, 0, sh); d.Year() == 2026; d = d.Add(7 * time.Hour) {
				n := s.Next(d)
				if n.IsZero() {
					t.Fatalf("%q days = %s: no next run from %s", expr, filter, d)
				}
				if cal.Working(n.In(sh)) != (filter == when.Working) {
					t.Fatalf("%q days = %s: from %s fires at %s, a day the filter drops", expr, filter, d, n.In(sh))
				}
				if !n.After(d) || n.Sub(d) > 15*24*time.Hour {
					t.Fatalf("%q days = %s: from %s next run %s", expr, filter, d, n.In(sh))
				}
			}
		}
	}
}

// When daylight-saving time ends a wall-clock time comes twice; a trigger
// that names its hour fires once, at the first, whatever instant the
// search starts from. An every-hour cron keeps firing through both.
func TestScheduleFallBackFiresOnce(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, c := range []struct {
		loc  *time.Location
		expr string
		day  time.Time // the day the clocks go back, local midnight
		want string    // the one run that day, UTC
	}{
		{ny, "0 1 * * *", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "05:00"},
		{ny, "30 1 * * *", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), "05:30"},
		{berlin, "30 2 * * *", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), "00:30"},
		{berlin, "0 2 * * *", time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), "00:00"},
	} {
		s := when.Schedule{Cron: MustParseCron(c.expr), Loc: c.loc}
		first, _ := s.Runs(c.day.Add(-time.Minute), c.day.Add(20*time.Hour), 10)
		if len(first) != 1 || first[0].Format("15:04") != c.want {
			t.Errorf("%s %q: runs %v, want one at %s UTC", c.loc, c.expr, first, c.want)
			continue
		}
		// Search from every minute of the night, as the leader's passes do.
		for from := c.day.Add(-time.Minute); from.Before(c.day.Add(4 * time.Hour)); from = from.Add(time.Minute) {
			runs, _ := s.Runs(from, c.day.Add(20*time.Hour), 10)
			var got []string
			for _, r := range runs {
				got = append(got, r.Format("15:04"))
			}
			if len(runs) > 1 || (len(runs) == 1 && !runs[0].Equal(first[0])) {
				t.Fatalf("%s %q from %s: runs %v, want at most the one at %s", c.loc, c.expr, from.UTC().Format("15:04Z"), got, c.want)
			}
		}
	}
	// Every quarter of an hour of elapsed time: the repeated hour has four
	// more runs (01:00-01:45 EDT, then EST), 100 in that 25-hour day.
	s := when.Schedule{Cron: MustParseCron("*/15 * * * *"), Loc: ny}
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	runs, _ := s.Runs(day.Add(-time.Minute), time.Date(2026, 11, 2, 0, 0, 0, 0, ny).Add(-time.Minute), 200)
	if len(runs) != 100 {
		t.Errorf("*/15 on the day the clocks go back: %d runs, want 100", len(runs))
	}
}
