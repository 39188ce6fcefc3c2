// Package when holds the pure rules of triggers: which days a calendar
// counts as working, when a trigger fires next (its cron read in its own
// time zone, through its calendar), what the catch-up rule does with the
// runs missed while no leader ran, and how a trigger's input template
// renders. It imports only the standard library, so every rule is tested
// without a database or a clock (core/arrows lists it as pure).
package when

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"
)

// MaxCalendarBytes bounds one calendar file: a year of dates with
// comments is a few kilobytes; the bound keeps a mistaken path (a log, a
// device) from being read into memory.
const MaxCalendarBytes = 256 << 10

// Calendar says which days are working days. A day is non-working when it
// is a weekend day not listed as "work" (the Chinese 调休 shift: a
// Saturday made a working day), or when it is listed as "off" (a public
// holiday).
type Calendar struct {
	Weekend map[time.Weekday]bool
	// Days are the listed dates ("2026-10-01") and whether each is a
	// working day (true: "work") or not (false: "off").
	Days map[string]bool
}

// Working reports whether the calendar day of t (in t's location) is a
// working day.
func (c *Calendar) Working(t time.Time) bool {
	if w, ok := c.Days[t.Format(time.DateOnly)]; ok {
		return w
	}
	return !c.Weekend[t.Weekday()]
}

// Weekdays are the names a weekend list may use.
var Weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// LineError is a bad line of a calendar file.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseCalendarDays reads a calendar file: one date a line, "YYYY-MM-DD"
// optionally followed by "off" (the default: a holiday) or "work" (a
// weekend day that is a working day); "#" starts a comment; blank lines
// are ignored. Every bad line is returned (as *LineError), not only the
// first, so an operator fixes the file in one go. A date listed twice is
// an error: which of the two would count is a guess.
func ParseCalendarDays(r io.Reader) (map[string]bool, []error) {
	days := map[string]bool{}
	first := map[string]int{}
	var errs []error
	b, err := io.ReadAll(io.LimitReader(r, MaxCalendarBytes+1))
	if err != nil {
		return nil, []error{err}
	}
	if len(b) > MaxCalendarBytes {
		return nil, []error{fmt.Errorf("the file is over the limit of %d bytes for a calendar", MaxCalendarBytes)}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxCalendarBytes+1)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) > 2 {
			errs = append(errs, &LineError{n, fmt.Sprintf("%q: a line is a date and optionally off or work", strings.TrimSpace(line))})
			continue
		}
		d, err := time.Parse(time.DateOnly, f[0])
		if err != nil {
			errs = append(errs, &LineError{n, fmt.Sprintf("%q is not a date written YYYY-MM-DD", f[0])})
			continue
		}
		work := false
		if len(f) == 2 {
			switch f[1] {
			case "off":
			case "work":
				work = true
			default:
				errs = append(errs, &LineError{n, fmt.Sprintf("%q: after the date comes off (a day off, the default) or work (a working day)", f[1])})
				continue
			}
		}
		key := d.Format(time.DateOnly)
		if prev, dup := first[key]; dup {
			errs = append(errs, &LineError{n, fmt.Sprintf("%s is listed twice (first at line %d)", key, prev)})
			continue
		}
		first[key] = n
		days[key] = work
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return days, errs
}

// Days filters a trigger's cron times through its calendar.
type Days string

// The filters: a trigger fires on every matching time, only on working
// days, or only on non-working days.
const (
	AnyDay     Days = ""
	Working    Days = "working"
	NonWorking Days = "non_working"
)

// Cron is a cron expression: the first time strictly after t, in t's
// location, at which it fires; zero when there is none.
type Cron interface {
	Next(t time.Time) time.Time
}

// Schedule is when a trigger fires: its cron read in Loc, kept or dropped
// by Cal according to Days.
type Schedule struct {
	Cron Cron
	Loc  *time.Location // nil = UTC
	Cal  *Calendar      // nil: every day counts (Days must be AnyDay)
	Days Days
}

// MaxSearchDays bounds how far Next looks for a run the calendar keeps: a
// filter that keeps nothing (a calendar of only holidays with days =
// "working") must end, not loop for ever. Eight years cover the rarest
// cron match (a leap day). The bound is in days, not in cron times: a
// minutely cron has 1440 times a day, and a bound in times would give up
// inside a long holiday (a week of Spring Festival) and stop the trigger
// for good.
const MaxSearchDays = 8 * 366

// Next returns the first run strictly after t, in UTC, or the zero time if
// there is none within the cron's horizon and MaxSearchDays.
//
// A day the calendar drops is dropped whole: the search jumps to the next
// local day instead of walking that day's cron times one by one.
func (s Schedule) Next(t time.Time) time.Time {
	loc := s.Loc
	if loc == nil {
		loc = time.UTC
	}
	cur := t.In(loc)
	end := cur.AddDate(0, 0, MaxSearchDays)
	for cur.Before(end) {
		n := s.Cron.Next(cur)
		if n.IsZero() || !n.Before(end) {
			return time.Time{}
		}
		if s.keeps(n) {
			return n.UTC()
		}
		// The cron's Next is strictly after its argument and minute
		// based: a second before the next local midnight makes it start
		// at that midnight (or the first minute after it, when the
		// clocks skip midnight).
		next := time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, loc).Add(-time.Second)
		if !next.After(n) {
			next = n
		}
		cur = next
	}
	return time.Time{}
}

func (s Schedule) keeps(t time.Time) bool {
	if s.Cal == nil || s.Days == AnyDay {
		return true
	}
	return s.Cal.Working(t) == (s.Days == Working)
}

// Runs returns the runs in (after, until], at most limit of them, and
// whether more were left out.
func (s Schedule) Runs(after, until time.Time, limit int) (runs []time.Time, more bool) {
	for t := s.Next(after); !t.IsZero() && !t.After(until); t = s.Next(t) {
		if len(runs) == limit {
			return runs, true
		}
		runs = append(runs, t)
	}
	return runs, false
}

// CatchUp is what a trigger does with runs missed while no leader ran.
type CatchUp string

// The catch-up rules.
const (
	// Skip records each missed run as skipped: a run at 02:00 makes no
	// sense at 09:00 (the default: nobody gets a surprise batch in the
	// middle of the working day).
	Skip CatchUp = "skip"
	// Once fires the latest missed run and records the others as skipped:
	// one run catches the work up (e.g. "export yesterday's invoices").
	Once CatchUp = "once"
	// All fires each missed run, oldest first, up to MaxCatchUp; the rest
	// are recorded as skipped.
	All CatchUp = "all"
)

// DefaultCatchUp is the rule of a trigger that names none.
const DefaultCatchUp = Skip

// CatchUps lists the rules, default first.
var CatchUps = []CatchUp{Skip, Once, All}

// MaxCatchUp bounds the runs All fires at once after an outage, so that a
// month down with a minutely trigger does not flood the queue.
const MaxCatchUp = 100

// Decision is what to do with the due runs of one trigger.
type Decision struct {
	Fire []time.Time // oldest first
	Skip []time.Time // recorded as skipped, oldest first
}

// Decide splits the due runs (oldest first) of a trigger at now: a run no
// older than onTime fires whatever the rule; older runs were missed and
// the rule decides. more says runs beyond the list were left out (they
// are older than the listed ones' successor... i.e. the list was cut):
// they count as dropped.
func Decide(rule CatchUp, due []time.Time, now time.Time, onTime time.Duration) Decision {
	var d Decision
	var missed []time.Time
	for _, t := range due {
		if now.Sub(t) <= onTime {
			d.Fire = append(d.Fire, t)
		} else {
			missed = append(missed, t)
		}
	}
	var fire []time.Time
	switch rule {
	case Once:
		if len(missed) > 0 {
			fire = missed[len(missed)-1:]
			d.Skip = append(d.Skip, missed[:len(missed)-1]...)
		}
	case All:
		n := min(len(missed), MaxCatchUp)
		fire = missed[len(missed)-n:]
		d.Skip = append(d.Skip, missed[:len(missed)-n]...)
	default:
		d.Skip = append(d.Skip, missed...)
	}
	d.Fire = append(fire, d.Fire...)
	return d
}

// TemplateData is what an input template sees: the scheduled time in the
// trigger's zone, and the trigger's name.
type TemplateData struct {
	Date    string    // scheduled day, "2026-01-31"
	Time    string    // scheduled time of day, "02:00"
	Month   string    // scheduled month, "2026-01"
	Prev    string    // the day before the scheduled day, "2026-01-30"
	Trigger string    // the trigger's name
	At      time.Time // the scheduled time itself, for layouts of one's own ({{.At.Format "..."}})
}

// Data is the template data of a run of trigger at t, in loc.
func Data(trigger string, t time.Time, loc *time.Location) TemplateData {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	return TemplateData{
		Date: t.Format(time.DateOnly), Time: t.Format("15:04"), Month: t.Format("2006-01"),
		Prev: t.AddDate(0, 0, -1).Format(time.DateOnly), Trigger: trigger, At: t,
	}
}

// MaxTemplateBytes bounds a template and what it renders to: one task's
// input.
const MaxTemplateBytes = 64 << 10

// ParseTemplate parses an input template. A field the data has not is
// an error only when it renders, so the loader renders every template
// once (missingkey=error makes map lookups fail the same way).
func ParseTemplate(text string) (*template.Template, error) {
	if len(text) > MaxTemplateBytes {
		return nil, fmt.Errorf("the template is %d bytes, over the limit of %d", len(text), MaxTemplateBytes)
	}
	return template.New("input").Option("missingkey=error").Parse(text)
}

// Render renders an input template for one run; the result must be one
// JSON object, the input of the run's one task.
func Render(t *template.Template, data TemplateData) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := t.Execute(&limitWriter{w: &b, n: MaxTemplateBytes}, data); err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b.Bytes(), &v); err != nil || !isObject(v) {
		msg := "not JSON"
		if err == nil {
			msg = "JSON but not an object"
		}
		return nil, fmt.Errorf("it renders to %s (%q); it must render to a JSON object such as {\"period\":\"{{.Month}}\"}", msg, shorten(b.String()))
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes())), nil
}

func isObject(v any) bool {
	_, ok := v.(map[string]any)
	return ok
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

var errTooLong = errors.New("the rendered input is over the limit of 64 KiB")

type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, errTooLong
	}
	l.n -= len(p)
	return l.w.Write(p)
}
