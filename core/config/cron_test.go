package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseCron(t *testing.T) {
	good := []string{
		"* * * * *", "0 9 * * 1-5", "*/15 8-20 1-16 * *", "0,30 9-17/2 * jan-mar,dec MON-FRI",
		"5/10 * * * *", "0 0 1 * 7", "0 0 * * 0-7", "0 0 29 2 *", "59 23 31 12 6",
	}
	for _, expr := range good {
		if _, err := ParseCron(expr); err != nil {
			t.Errorf("ParseCron(%q): %v", expr, err)
		}
	}
	bad := map[string]string{
		"":                 "has 0 fields",
		"* * * *":          "has 4 fields",
		"* * * * * *":      "has 6 fields",
		"60 * * * *":       "minute field \"60\": 60 is outside 0-59",
		"* 24 * * *":       "hour field",
		"* * 0 * *":        "day of month field",
		"* * * 13 *":       "month field",
		"* * * * 8":        "day of week field",
		"*/0 * * * *":      "step \"0\" is not a positive number",
		"5-1 * * * *":      "range 5-1 goes backwards",
		"a * * * *":        "\"a\" is not a number",
		"1,,2 * * * *":     "empty list item",
		"0 0 31 feb,apr *": "never fires",
		"* * * foo *":      "month field",
	}
	for expr, want := range bad {
		_, err := ParseCron(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCron(%q): got %v, want an error containing %q", expr, err, want)
		}
	}
}

func TestCronNext(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr        string
		after, Next time.Time
	}{
		// Friday 2026-11-20 10:00 → Monday 08:00 (weekdays only).
		{"0 8 * * 1-5", time.Date(2026, 11, 20, 10, 0, 0, 0, shanghai), time.Date(2026, 11, 23, 8, 0, 0, 0, shanghai)},
		// Strictly after: at 08:00 exactly the next run is tomorrow.
		{"0 8 * * *", time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)},
		{"*/15 * * * *", time.Date(2026, 1, 1, 0, 7, 30, 0, time.UTC), time.Date(2026, 1, 1, 0, 15, 0, 0, time.UTC)},
		// Both day fields restricted: the 1st or any Monday, whichever first.
		{"0 0 1 * mon", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"0 0 1 * mon", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		// Sunday as 7.
		{"0 12 * * 7", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)},
		// Leap day.
		{"0 0 29 2 *", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		// 02:30 does not exist on 2026-03-08 in New York; the next day has it.
		{"30 2 * * *", time.Date(2026, 3, 8, 0, 0, 0, 0, newYork), time.Date(2026, 3, 9, 2, 30, 0, 0, newYork)},
		// 01:30 happens twice on 2026-11-01; the first one counts.
		{"30 1 * * *", time.Date(2026, 11, 1, 0, 0, 0, 0, newYork), time.Date(2026, 11, 1, 1, 30, 0, 0, newYork)},
	}
	for _, tt := range tests {
		c, err := ParseCron(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Next(tt.after); !got.Equal(tt.Next) {
			t.Errorf("%q after %v: got %v, want %v", tt.expr, tt.after, got, tt.Next)
		}
	}
}

// Next always moves forward, across daylight-saving changes included.
func TestCronNextMonotonic(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCron("*/20 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 28, 0, 0, 0, 0, loc)
	for i := 0; i < 24*3*5; i++ {
		next := c.Next(at)
		if !next.After(at) || next.Sub(at) > time.Hour {
			t.Fatalf("Next(%v) = %v", at, next)
		}
		at = next
	}
}
