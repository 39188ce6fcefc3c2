package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cron is a parsed 5-field cron expression: minute hour day-of-month month
// day-of-week. Each field is a set of allowed values held as bits.
type Cron struct {
	minute, hour, dom, month, dow uint64
	// Classic cron: when both day fields are restricted, a day matches if
	// either does ("1,15 * 1-5" = the 1st, the 15th and every weekday).
	domStar, dowStar bool
}

type cronField struct {
	name     string
	min, max int
	names    []string // index i is value min+i
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	// 7 is Sunday too, as in most crons; it is folded onto 0.
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

// ParseCron parses "minute hour day-of-month month day-of-week". Each field
// is "*" or a comma list of values, ranges "a-b" and steps "*/n", "a-b/n"
// or "a/n"; months and week days may be written as jan..dec and sun..sat.
func ParseCron(expr string) (Cron, error) {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return Cron{}, fmt.Errorf("it has %d fields; a cron expression has 5: minute hour day-of-month month day-of-week", len(fields))
	}
	var bits [5]uint64
	for i, f := range fields {
		b, err := parseCronField(f, cronFields[i])
		if err != nil {
			return Cron{}, fmt.Errorf("%s field %q: %w", cronFields[i].name, f, err)
		}
		bits[i] = b
	}
	if bits[4]&(1<<7) != 0 {
		bits[4] = bits[4]&^(1<<7) | 1
	}
	c := Cron{
		minute: bits[0], hour: bits[1], dom: bits[2], month: bits[3], dow: bits[4],
		domStar: fields[2] == "*" || strings.HasPrefix(fields[2], "*/"),
		dowStar: fields[4] == "*" || strings.HasPrefix(fields[4], "*/"),
	}
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return Cron{}, errors.New("it never fires: no month has that day")
	}
	return c, nil
}

// MustParseCron is ParseCron for expressions known to be valid, such as
// those of hand-built configurations in tests; it panics on an error.
func MustParseCron(expr string) Cron {
	c, err := ParseCron(expr)
	if err != nil {
		panic(fmt.Sprintf("cron %q: %v", expr, err))
	}
	return c
}

// IsZero reports whether c is the zero Cron, which never fires: a
// Schedule not made by the loader.
func (c Cron) IsZero() bool { return c == Cron{} }

func parseCronField(f string, spec cronField) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(f, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("step %q is not a positive number", stepStr)
			}
			step = n
		}
		lo, hi := spec.min, spec.max
		switch {
		case rng == "*":
		case rng == "":
			return 0, errors.New("empty list item")
		default:
			a, b, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = cronValue(a, spec); err != nil {
				return 0, err
			}
			switch {
			case isRange:
				if hi, err = cronValue(b, spec); err != nil {
					return 0, err
				}
				if lo > hi {
					return 0, fmt.Errorf("range %s goes backwards", rng)
				}
			case !hasStep:
				hi = lo
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func cronValue(s string, spec cronField) (int, error) {
	for i, n := range spec.names {
		if strings.EqualFold(s, n) {
			return spec.min + i, nil
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v < spec.min || v > spec.max {
		return 0, fmt.Errorf("%d is outside %d-%d", v, spec.min, spec.max)
	}
	return v, nil
}

func (c Cron) dayMatches(t time.Time) bool {
	dom := c.dom&(1<<uint(t.Day())) != 0
	dow := c.dow&(1<<uint(t.Weekday())) != 0
	switch {
	case c.domStar && c.dowStar:
		return true
	case c.domStar:
		return dow
	case c.dowStar:
		return dom
	}
	return dom || dow
}

// Next returns the first minute strictly after t, in t's location, at
// which the expression fires, or the zero time if there is none within
// eight years (a leap day is the rarest match there is). When the clocks
// go back, a wall-clock time that comes twice fires once, at its first
// coming, if the expression names hours ("30 1 * * *"); an expression for
// every hour fires in both ("*/15 * * * *" is every quarter of an hour of
// elapsed time).
func (c Cron) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(8, 0, 0)
	for t.Before(end) {
		if c.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			// To the next hour of the wall clock by elapsed time, not by
			// time.Date: when the clocks go back, time.Date may name the
			// second of a repeated hour and step over the first.
			t = t.Add(time.Duration(60-t.Minute()) * time.Minute)
			continue
		}
		if c.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		if c.hour != allHours && repeatedWallClock(t) {
			// The clocks went back and this wall-clock time already came
			// once: "0 1 * * *" fires at the first 01:00, not at both.
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// allHours is the hour field of "*": every hour, where a repeated hour
// is more time and fires again ("*/5 * * * *" every five minutes of it).
const allHours = 1<<24 - 1

// repeatedWallClock reports whether the wall-clock minute of t (date,
// hour, minute in t's location) already came at an earlier instant: the
// hour repeated when daylight-saving time ends. The clocks go back by 30
// minutes (Lord Howe), an hour (most zones) or at most two.
func repeatedWallClock(t time.Time) bool {
	y, mo, d := t.Date()
	h, mi := t.Hour(), t.Minute()
	for _, back := range []time.Duration{30 * time.Minute, time.Hour, 2 * time.Hour} {
		e := t.Add(-back)
		ey, emo, ed := e.Date()
		if ey == y && emo == mo && ed == d && e.Hour() == h && e.Minute() == mi {
			return true
		}
	}
	return false
}
