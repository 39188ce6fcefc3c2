package schedule

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func d(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var pools = []Pool{{Name: "shared", Max: 2}, {Name: "solo", Max: 1}}

func bk(id, pool, robot, cron string, dur time.Duration, tz string) Booking {
	return Booking{ID: id, Process: strings.Split(id, "/")[0], Department: "finance", Pool: pool, Robot: robot, Cron: cron, Duration: dur, Timezone: tz}
}

func describe(cs []Clash) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s %s %s %s %s-%s", c.Kind, c.Pool, c.Robot, strings.Join(c.Bookings, "+"), c.Start.UTC().Format("01-02T15:04"), c.End.UTC().Format("01-02T15:04"))
		if c.Kind == CapacityClash {
			out[i] += fmt.Sprintf(" %d>%d", c.Needed, c.Max)
		}
	}
	return out
}

// The week of Monday 2 November 2026.
var (
	mon = d("2026-11-02T00:00:00Z")
	sun = d("2026-11-09T00:00:00Z")
)

func TestClashes(t *testing.T) {
	h := time.Hour
	cases := []struct {
		name     string
		bookings []Booking
		from, to time.Time
		want     []string
	}{
		{
			name: "no bookings",
			from: mon, to: sun,
		},
		{
			name: "back to back on one robot is no clash",
			bookings: []Booking{
				bk("a/x", "shared", "r1", "0 9 * * 1-5", h, ""),
				bk("b/x", "shared", "r1", "0 10 * * 1-5", h, ""),
			},
			from: mon, to: sun,
		},
		{
			name: "weekday slots overlapping on one robot clash every weekday",
			bookings: []Booking{
				bk("a/x", "shared", "r1", "0 9 * * 1-5", 90*time.Minute, ""), // 09:00-10:30
				bk("b/x", "shared", "r1", "0 10 * * mon-fri", h, ""),         // 10:00-11:00
			},
			from: mon, to: sun,
			want: []string{
				"robot shared r1 a/x+b/x 11-02T10:00-11-02T10:30",
				"robot shared r1 a/x+b/x 11-03T10:00-11-03T10:30",
				"robot shared r1 a/x+b/x 11-04T10:00-11-04T10:30",
				"robot shared r1 a/x+b/x 11-05T10:00-11-05T10:30",
				"robot shared r1 a/x+b/x 11-06T10:00-11-06T10:30",
			},
		},
		{
			name: "different robots do not clash and fit the pool",
			bookings: []Booking{
				bk("a/x", "shared", "r1", "0 9 * * 1-5", 90*time.Minute, ""),
				bk("b/x", "shared", "r2", "0 10 * * 1-5", h, ""),
			},
			from: mon, to: sun,
		},
		{
			name: "weekday versus weekend never meet",
			bookings: []Booking{
				bk("a/x", "solo", "", "0 9 * * 1-5", 3*h, ""),
				bk("b/x", "solo", "", "0 9 * * sat,sun", 3*h, ""),
			},
			from: mon, to: sun,
		},
		{
			name: "three unpinned slots in a pool of two",
			bookings: []Booking{
				bk("a/x", "shared", "", "0 9 2 11 *", 2*h, ""),  // 09-11
				bk("b/x", "shared", "", "30 9 2 11 *", 2*h, ""), // 09:30-11:30
				bk("c/x", "shared", "", "0 10 2 11 *", 2*h, ""), // 10-12
			},
			from: mon, to: sun,
			want: []string{"capacity shared  a/x+b/x+c/x 11-02T10:00-11-02T11:00 3>2"},
		},
		{
			name: "robots per slot count towards the pool",
			bookings: []Booking{
				{ID: "a/x", Process: "a", Pool: "shared", Robots: 2, Cron: "0 9 2 11 *", Duration: h},
				bk("b/x", "shared", "", "30 9 2 11 *", h, ""),
			},
			from: mon, to: sun,
			want: []string{"capacity shared  a/x+b/x 11-02T09:30-11-02T10:00 3>2"},
		},
		{
			name: "same wall clock in two time zones does not clash",
			bookings: []Booking{
				bk("sh/x", "solo", "", "0 9 * * 1-5", h, "Asia/Shanghai"), // 01:00-02:00 UTC
				bk("ld/x", "solo", "", "0 9 * * 1-5", h, "Europe/London"), // 09:00-10:00 UTC
			},
			from: mon, to: sun,
		},
		{
			name: "different wall clocks in two zones meet in UTC",
			bookings: []Booking{
				bk("sh/x", "solo", "", "0 17 * * 1", 2*h, "Asia/Shanghai"), // Mon 09:00-11:00 UTC
				bk("ld/x", "solo", "", "0 10 * * 1", h, "Europe/London"),   // Mon 10:00-11:00 UTC
			},
			from: mon, to: sun,
			want: []string{"capacity solo  ld/x+sh/x 11-02T10:00-11-02T11:00 2>1"},
		},
		{
			name: "a night slot across midnight meets the next morning's in another zone",
			bookings: []Booking{
				bk("night/x", "solo", "", "0 23 * * 1", 3*h, "UTC"),         // Mon 23:00 - Tue 02:00
				bk("early/x", "solo", "", "30 9 * * 2", h, "Asia/Shanghai"), // Tue 01:30-02:30 UTC
			},
			from: mon, to: sun,
			want: []string{"capacity solo  early/x+night/x 11-03T01:30-11-03T02:00 2>1"},
		},
		{
			name: "a slot begun before the window is still seen",
			bookings: []Booking{
				bk("a/x", "solo", "", "0 22 1 11 *", 4*h, ""), // Sun 1 Nov 22:00 - Mon 02:00
				bk("b/x", "solo", "", "0 1 2 11 *", h, ""),
			},
			from: mon, to: sun,
			want: []string{"capacity solo  a/x+b/x 11-02T01:00-11-02T02:00 2>1"},
		},
		{
			name: "a slot longer than its recurrence overlaps itself on a robot",
			bookings: []Booking{
				bk("a/x", "shared", "r1", "0 */2 2 11 *", 3*h, ""),
			},
			from: d("2026-11-02T00:00:00Z"), to: d("2026-11-02T05:00:00Z"),
			want: []string{
				"robot shared r1 a/x 11-02T02:00-11-02T03:00",
				"robot shared r1 a/x 11-02T04:00-11-02T05:00",
			},
		},
		{
			name: "unknown pool",
			bookings: []Booking{
				bk("a/x", "nowhere", "", "0 9 * * *", h, ""),
			},
			from: mon, to: sun,
			want: []string{"unknown_pool nowhere  a/x 01-01T00:00-01-01T00:00"},
		},
		{
			name: "booking window bounds the recurrence",
			bookings: []Booking{
				bk("a/x", "solo", "", "0 9 * * *", h, ""),
				func() Booking {
					b := bk("b/x", "solo", "", "30 9 * * *", h, "")
					b.From, b.Until = d("2026-11-04T00:00:00Z"), d("2026-11-05T00:00:00Z")
					return b
				}(),
			},
			from: mon, to: sun,
			want: []string{"capacity solo  a/x+b/x 11-04T09:30-11-04T10:00 2>1"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Clashes(c.bookings, pools, c.from, c.to)
			if err != nil {
				t.Fatal(err)
			}
			g := describe(got)
			if strings.Join(g, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(g, "\n  "), strings.Join(c.want, "\n  "))
			}
		})
	}
}

// TestDaylightSaving: a 09:00 New York slot moves in UTC when the clocks
// change (1 November 2026), so it meets a fixed UTC slot only after.
func TestDaylightSaving(t *testing.T) {
	bs := []Booking{
		bk("ny/x", "solo", "", "0 9 * * *", h1, "America/New_York"),
		bk("utc/x", "solo", "", "0 14 * * *", h1, "UTC"),
	}
	got, err := Clashes(bs, pools, d("2026-10-30T00:00:00Z"), d("2026-11-03T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"capacity solo  ny/x+utc/x 11-01T14:00-11-01T15:00 2>1",
		"capacity solo  ny/x+utc/x 11-02T14:00-11-02T15:00 2>1",
	}
	if g := describe(got); strings.Join(g, "|") != strings.Join(want, "|") {
		t.Fatalf("got %v", g)
	}
	sum := Summarise(got)
	if len(sum) != 1 || sum[0].Count != 2 || !sum[0].First.Equal(d("2026-11-01T14:00:00Z")) || !sum[0].Last.Equal(d("2026-11-02T14:00:00Z")) {
		t.Fatalf("summary %+v", sum)
	}
}

const h1 = time.Hour

func TestAdmit(t *testing.T) {
	existing := []Booking{
		bk("a/x", "shared", "r1", "0 9 * * 1-5", 90*time.Minute, "Asia/Shanghai"),
		bk("b/x", "shared", "r2", "0 9 * * 1-5", 90*time.Minute, "Asia/Shanghai"),
	}
	// The pool is full 09:00-10:30 Shanghai on weekdays: a third slot
	// there is refused, at 10:30 it fits.
	cs, err := Admit(existing, bk("c/x", "shared", "", "0 10 * * 1-5", h1, "Asia/Shanghai"), pools, mon, sun)
	if err != nil || len(cs) != 5 || cs[0].Kind != CapacityClash {
		t.Fatalf("%v %v", describe(cs), err)
	}
	cs, err = Admit(existing, bk("c/x", "shared", "", "30 10 * * 1-5", h1, "Asia/Shanghai"), pools, mon, sun)
	if err != nil || len(cs) != 0 {
		t.Fatalf("%v %v", describe(cs), err)
	}
	// Pinned to a busy robot: robot clash, even though it is the weekend
	// for one of them in UTC terms.
	cs, err = Admit(existing, bk("c/x", "shared", "r1", "0 1 * * 1-5", h1, "UTC"), pools, mon, sun)
	if err != nil || len(cs) == 0 || cs[0].Kind != RobotClash {
		t.Fatalf("%v %v", describe(cs), err)
	}
	if _, err := Admit(existing, existing[0], pools, mon, sun); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

func TestCapacityAndUtilisation(t *testing.T) {
	day := d("2026-11-02T00:00:00Z")
	bs := []Booking{
		bk("a/x", "shared", "r1", "0 9 * * *", 2*h1, ""),  // 09-11
		bk("b/x", "shared", "r1", "0 10 * * *", 2*h1, ""), // 10-12, clashes on r1
		bk("c/x", "shared", "", "0 11 * * *", 2*h1, ""),   // 11-13
		bk("z/x", "solo", "", "0 0 * * *", 6*h1, ""),
	}
	free, err := Capacity(bs, pools[0], day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range free {
		got = append(got, fmt.Sprintf("%s-%s %d/%d free %d", f.Start.Format("15"), f.End.Format("15"), f.Booked, f.Max, f.FreeRobots()))
	}
	// 10-11 and 11-12 run different slots but the same count; Capacity
	// merges equal counts.
	want := "00-09 0/2 free 2|09-10 1/2 free 1|10-12 2/2 free 0|12-13 1/2 free 1|13-00 0/2 free 2"
	if strings.Join(got, "|") != want {
		t.Fatalf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
	us, err := Booked(bs, pools, day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ug []string
	for _, u := range us {
		ug = append(ug, fmt.Sprintf("%s/%s %.0f/%.0f", u.Pool, u.Robot, u.BookedHours, u.CapacityHours))
	}
	// shared: 1h+2h+2h+1h = 6 robot-hours of 48; r1 booked 09-12 = 3h
	// (the overlap counts once); solo 6 of 24.
	if w := "shared/ 6/48|shared/r1 3/24|solo/ 6/24"; strings.Join(ug, "|") != w {
		t.Fatalf("got %s want %s", strings.Join(ug, "|"), w)
	}
	if us[2].Share() != 0.25 || (Utilisation{}).Share() != 0 {
		t.Fatal("share")
	}
}

func TestValidate(t *testing.T) {
	bad := []Booking{
		{ID: "", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1},
		{ID: "n1", Pool: "x", Cron: "* * * * *", Duration: h1},
		{ID: "n2", Process: "p", Pool: "x", Cron: "61 * * * *", Duration: h1},
		{ID: "n3", Process: "p", Pool: "x", Cron: "* * * * *"},
		{ID: "n4", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1, Timezone: "Mars/Olympus"},
		{ID: "n5", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1, Timezone: "Local"},
		{ID: "n6", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1, Robot: "r", Robots: 2},
		{ID: "n7", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1, From: mon, Until: mon},
		{ID: "n7", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1},
		{ID: "n8", Process: "p", Pool: "x", Cron: "* * * * *", Duration: h1, Robots: -1},
	}
	err := Validate(bad)
	for _, want := range []string{`"": no id`, `"n1": a booking names`, `"n2": cron "61 * * * *"`, `"n3": duration`, `"n4": timezone "Mars/Olympus"`, `"Local"`, `cannot need 2 robots`, `until is not after from`, `"n7": duplicate id`, `robots = -1`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatal("not ErrInvalid")
	}
	if _, err := Occurrences(bad[2:3], mon, sun); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

func TestWeekly(t *testing.T) {
	cron, dur, err := Weekly([]string{"mon", "tue", "wed", "thu", "fri"}, "09:00", "10:30")
	if err != nil || cron != "0 9 * * mon,tue,wed,thu,fri" || dur != 90*time.Minute {
		t.Fatal(cron, dur, err)
	}
	cron, dur, err = Weekly([]string{"sat"}, "22:15", "02:00")
	if err != nil || cron != "15 22 * * sat" || dur != 3*time.Hour+45*time.Minute {
		t.Fatal(cron, dur, err)
	}
	for _, c := range [][3]string{{"", "09:00", "10:00"}, {"mon", "9h", "10:00"}, {"mon", "09:00", "25:00"}, {"moonday", "09:00", "10:00"}} {
		days := []string{c[0]}
		if c[0] == "" {
			days = nil
		}
		if _, _, err := Weekly(days, c[1], c[2]); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v", c, err)
		}
	}
}

func TestOccurrencesOrderAndZones(t *testing.T) {
	bs := []Booking{
		bk("sh/x", "solo", "", "0 9 * * 1-5", h1, "Asia/Shanghai"),
		bk("utc/x", "solo", "", "30 0 * * 1", h1, ""),
	}
	slots, err := Occurrences(bs, mon, mon.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range slots {
		got = append(got, s.Booking.ID+"@"+s.Start.Format("15:04"))
	}
	// Shanghai's Monday 09:00 is 01:00 UTC; Tuesday's falls outside the
	// UTC day asked for.
	if strings.Join(got, " ") != "utc/x@00:30 sh/x@01:00" {
		t.Fatal(got)
	}
}
