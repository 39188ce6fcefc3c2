package when

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// daily fires every day at hh:mm local time, as a cron "mm hh * * *"
// would: enough of a cron for the rules here (core/config tests the real
// cron with these rules).
type daily struct{ hh, mm int }

func (d daily) Next(t time.Time) time.Time {
	n := time.Date(t.Year(), t.Month(), t.Day(), d.hh, d.mm, 0, 0, t.Location())
	for !n.After(t) {
		n = time.Date(n.Year(), n.Month(), n.Day()+1, d.hh, d.mm, 0, 0, t.Location())
	}
	return n
}

func cnCalendar(t *testing.T) *Calendar {
	t.Helper()
	days, errs := ParseCalendarDays(strings.NewReader(`# China 2026, National Day
2026-10-01        # off is the default
2026-10-02 off
2026-10-10 work   # 调休: Saturday is a working day
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return &Calendar{Weekend: map[time.Weekday]bool{time.Saturday: true, time.Sunday: true}, Days: days}
}

func TestCalendarWorking(t *testing.T) {
	c := cnCalendar(t)
	for day, want := range map[string]bool{
		"2026-09-30": true,  // Wednesday
		"2026-10-01": false, // Thursday, holiday
		"2026-10-02": false, // Friday, holiday
		"2026-10-03": false, // Saturday
		"2026-10-09": true,  // Friday
		"2026-10-10": true,  // Saturday made a working day
		"2026-10-11": false, // Sunday
	} {
		d, _ := time.Parse(time.DateOnly, day)
		if got := c.Working(d); got != want {
			t.Errorf("%s working = %v, want %v", day, got, want)
		}
	}
}

func TestParseCalendarRefusals(t *testing.T) {
	_, errs := ParseCalendarDays(strings.NewReader("2026-01-01\n\n2026-13-01\n2026-01-02 holiday\n2026-01-01 work\n2026-01-03 off extra\n"))
	want := []string{
		`line 3: "2026-13-01" is not a date`,
		`line 4: "holiday": after the date comes off`,
		`line 5: 2026-01-01 is listed twice (first at line 1)`,
		`line 6: "2026-01-03 off extra": a line is a date`,
	}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %d", errs, len(want))
	}
	for i, w := range want {
		var le *LineError
		if !errors.As(errs[i], &le) || !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %v, want prefix %q", i, errs[i], w)
		}
	}
	_, errs = ParseCalendarDays(strings.NewReader(strings.Repeat("# padding\n", MaxCalendarBytes/10+1)))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "over the limit") {
		t.Errorf("a big file: %v", errs)
	}
}

func TestScheduleCalendarFilter(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	cal := cnCalendar(t)
	from := time.Date(2026, 9, 30, 12, 0, 0, 0, sh)
	until := time.Date(2026, 10, 12, 0, 0, 0, 0, sh)
	days := func(s Schedule) []string {
		runs, more := s.Runs(from, until, 100)
		if more {
			t.Fatal("more runs than expected")
		}
		var out []string
		for _, r := range runs {
			out = append(out, r.In(sh).Format("01-02 15:04"))
		}
		return out
	}
	working := days(Schedule{Cron: daily{2, 0}, Loc: sh, Cal: cal, Days: Working})
	if got, want := strings.Join(working, ","), "10-05 02:00,10-06 02:00,10-07 02:00,10-08 02:00,10-09 02:00,10-10 02:00"; got != want {
		t.Errorf("working runs %s, want %s", got, want)
	}
	off := days(Schedule{Cron: daily{2, 0}, Loc: sh, Cal: cal, Days: NonWorking})
	if got, want := strings.Join(off, ","), "10-01 02:00,10-02 02:00,10-03 02:00,10-04 02:00,10-11 02:00"; got != want {
		t.Errorf("non-working runs %s, want %s", got, want)
	}
	all := days(Schedule{Cron: daily{2, 0}, Loc: sh})
	if len(all) != 11 {
		t.Errorf("every day: %d runs, want 11", len(all))
	}
	// Runs are in UTC: 02:00 in Shanghai is 18:00 UTC the day before.
	r := Schedule{Cron: daily{2, 0}, Loc: sh}.Next(from)
	if r.Location() != time.UTC || r.Hour() != 18 {
		t.Errorf("next run %v, want 18:00 UTC", r)
	}
}

func TestScheduleEndsWhenNothingMatches(t *testing.T) {
	cal := &Calendar{Weekend: map[time.Weekday]bool{}, Days: map[string]bool{}}
	s := Schedule{Cron: daily{2, 0}, Cal: cal, Days: NonWorking}
	if n := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); !n.IsZero() {
		t.Errorf("a filter that keeps nothing fired at %v", n)
	}
}

func TestScheduleDST(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	s := Schedule{Cron: daily{9, 0}, Loc: berlin}
	// Summer time starts on 2026-03-29: 09:00 is 08:00 UTC before, 07:00 after.
	runs, _ := s.Runs(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), 10)
	var got []string
	for _, r := range runs {
		got = append(got, r.Format("01-02 15:04"))
	}
	if want := "03-28 08:00,03-29 07:00,03-30 07:00"; strings.Join(got, ",") != want {
		t.Errorf("runs %v, want %s", got, want)
	}
}

func TestRunsLimit(t *testing.T) {
	s := Schedule{Cron: daily{0, 0}}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	runs, more := s.Runs(from, from.AddDate(0, 0, 10), 3)
	if len(runs) != 3 || !more {
		t.Errorf("runs %v more %v, want 3 and more", runs, more)
	}
	runs, more = s.Runs(from, from.AddDate(0, 0, 3), 3)
	if len(runs) != 3 || more {
		t.Errorf("runs %v more %v, want exactly 3", runs, more)
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 10, 9, 0, 0, 0, time.UTC)
	day := func(d int) time.Time { return time.Date(2026, 1, d, 2, 0, 0, 0, time.UTC) }
	missed := []time.Time{day(7), day(8), day(9)}
	onTime := now.Add(-30 * time.Second)
	due := append(append([]time.Time{}, missed...), onTime)
	for _, tc := range []struct {
		rule       CatchUp
		due        []time.Time
		fire, skip []time.Time
	}{
		{Skip, due, []time.Time{onTime}, missed},
		{Once, due, []time.Time{day(9), onTime}, missed[:2]},
		{All, due, due, nil},
		{Skip, []time.Time{onTime}, []time.Time{onTime}, nil},
		{Once, []time.Time{onTime}, []time.Time{onTime}, nil},
		{Once, missed, []time.Time{day(9)}, missed[:2]},
		{All, nil, nil, nil},
	} {
		d := Decide(tc.rule, tc.due, now, time.Minute)
		if !same(d.Fire, tc.fire) || !same(d.Skip, tc.skip) {
			t.Errorf("%s over %d runs: fire %v skip %v, want fire %v skip %v", tc.rule, len(tc.due), d.Fire, d.Skip, tc.fire, tc.skip)
		}
	}
	// All is bounded: the oldest beyond MaxCatchUp are skipped.
	var many []time.Time
	for i := range MaxCatchUp + 5 {
		many = append(many, now.Add(-time.Duration(MaxCatchUp+5-i)*time.Hour))
	}
	d := Decide(All, many, now, time.Minute)
	if len(d.Fire) != MaxCatchUp || len(d.Skip) != 5 || !d.Fire[MaxCatchUp-1].Equal(many[len(many)-1]) || !d.Skip[0].Equal(many[0]) {
		t.Errorf("bounded all: fire %d skip %d", len(d.Fire), len(d.Skip))
	}
}

func same(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func TestTemplate(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	at := time.Date(2026, 2, 28, 18, 30, 0, 0, time.UTC) // 2026-03-01 02:30 in Shanghai
	data := Data("vat", at, sh)
	for tmpl, want := range map[string]string{
		`{"period":"{{.Month}}","day":"{{.Date}}"}`:   `{"period":"2026-03","day":"2026-03-01"}`,
		`{"prev":"{{.Prev}}","t":"{{.Trigger}}"}`:     `{"prev":"2026-02-28","t":"vat"}`,
		` {"at":"{{.At.Format "2006/01/02 15:04"}}"}`: `{"at":"2026/03/01 02:30"}`,
	} {
		tp, err := ParseTemplate(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Render(tp, data)
		if err != nil || string(got) != want {
			t.Errorf("%s renders %s (%v), want %s", tmpl, got, err, want)
		}
	}
	for tmpl, want := range map[string]string{
		`{"x":"{{.Nope}}"}`:                     "can't evaluate field Nope",
		`["{{.Date}}"]`:                         "JSON but not an object",
		`period={{.Date}}`:                      "not JSON",
		`{{range .Date}}`:                       "unexpected EOF",
		strings.Repeat("x", MaxTemplateBytes+1): "over the limit",
	} {
		tp, err := ParseTemplate(tmpl)
		if err == nil {
			_, err = Render(tp, data)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: error %v, want %q", tmpl, err, want)
		}
	}
	tp, _ := ParseTemplate(`{"x":"{{printf "%070000d" 1}}"}`)
	if _, err := Render(tp, data); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a huge rendering: %v", err)
	}
}
