package config

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/rpacloud/rpacloud/core/trigger/when"
)

// Calendar is a named set of non-working days (calendar.go's HCL block):
// weekend days, and dates from a file, each a holiday ("off") or a
// weekend day made a working day ("work", the Chinese 调休 shift).
type Calendar struct {
	Name    string
	File    string   // as written, relative to the file that declares the block
	Weekend []string // day names, default ["sat", "sun"]
	// FileSHA256 is the hex sha256 of the file's content, so that a plan
	// shows an edited calendar file as a change of its block.
	FileSHA256 string
	DeclRange  hcl.Range
	cal        *when.Calendar
}

// Rules is the calendar as the trigger rules read it.
func (c Calendar) Rules() *when.Calendar { return c.cal }

// Trigger starts batches of a process on a schedule.
type Trigger struct {
	Name     string
	Process  string
	Customer string // who the batches are for; the process's owner when not written
	Cron     string
	Start    Cron   // Cron parsed at load
	Timezone string // IANA name as resolved: the block's, else the server's, else "UTC"
	Calendar string // "" = none
	Days     string // "" | "working" | "non_working"
	CatchUp  string // "skip" (default) | "once" | "all"
	Label    string
	Slot     string // a schedule block of the process; "" = none
	// Exactly one input source, or none (one task with {}).
	Inputs        string // inline inputs as a JSON array
	InputsFile    string // as written
	InputsSHA256  string // of InputsFile's content
	InputTemplate string
	DeclRange     hcl.Range

	loc    *time.Location
	cal    *when.Calendar
	inputs []json.RawMessage
	tmpl   *template.Template
}

// Location is the trigger's time zone.
func (t Trigger) Location() *time.Location {
	if t.loc == nil {
		return time.UTC
	}
	return t.loc
}

// Schedule is when the trigger fires, as the pure rules read it.
func (t Trigger) Schedule() when.Schedule {
	return when.Schedule{Cron: t.Start, Loc: t.Location(), Cal: t.cal, Days: when.Days(t.Days)}
}

// Rule is the trigger's catch-up rule.
func (t Trigger) Rule() when.CatchUp {
	if t.CatchUp == "" {
		return when.DefaultCatchUp
	}
	return when.CatchUp(t.CatchUp)
}

// InputsAt are the task inputs of the run scheduled at at: the inline
// list, the file's, the template rendered for at, or one empty object.
func (t Trigger) InputsAt(at time.Time) ([]json.RawMessage, error) {
	switch {
	case t.tmpl != nil:
		in, err := when.Render(t.tmpl, when.Data(t.Name, at, t.Location()))
		if err != nil {
			return nil, fmt.Errorf("trigger %q input_template: %w", t.Name, err)
		}
		return []json.RawMessage{in}, nil
	case len(t.inputs) > 0:
		return t.inputs, nil
	}
	return []json.RawMessage{json.RawMessage(`{}`)}, nil
}

// Bounds of a trigger's inputs: one run is one batch, kept in memory and
// in the configuration; bigger orders are submitted, not configured.
const (
	MaxTriggerInputs     = 1000
	MaxTriggerInputBytes = 1 << 20
)

// SlotCheckHorizon is how far ahead the loader checks that a trigger's
// runs fall inside its slot.
const SlotCheckHorizon = 8 * 7 * 24 * time.Hour

var (
	calendarSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "file", Required: true}, {Name: "weekend"}}}
	triggerSchema  = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "process", Required: true}, {Name: "customer"}, {Name: "cron", Required: true}, {Name: "timezone"},
		{Name: "calendar"}, {Name: "days"}, {Name: "catch_up"}, {Name: "inputs"}, {Name: "inputs_file"},
		{Name: "input_template"}, {Name: "label"}, {Name: "slot"},
	}}
)

// readSide reads a file a block names, relative to the file that
// declares the block. Configurations sent through the API have no
// directory on the daemon's host: a path there would read the daemon's
// own files for whoever holds an admin token, so they are refused.
func (l *loader) readSide(at *hcl.Attribute, path, what string, limit int64) ([]byte, string, bool) {
	rng := at.Expr.Range()
	if !l.fromDisk {
		l.diags = append(l.diags, errAt(rng, "File not available",
			fmt.Sprintf("%s = %q: a configuration sent through the API cannot name files on the daemon's host; put this block in the daemon's --config files and reload with SIGHUP.", what, path)))
		return nil, "", false
	}
	full := path
	switch {
	case filepath.IsAbs(full):
	case l.sideDir != "":
		full = filepath.Join(l.sideDir, path)
	default:
		full = filepath.Join(filepath.Dir(rng.Filename), path)
	}
	st, err := os.Stat(full)
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", full)
	}
	if err == nil && st.Size() > limit {
		err = fmt.Errorf("%s is %d bytes, over the limit of %d", full, st.Size(), limit)
	}
	var b []byte
	if err == nil {
		b, err = os.ReadFile(full)
	}
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s is over the limit of %d bytes", full, limit)
	}
	if err != nil {
		l.diags = append(l.diags, errAt(rng, "Cannot read "+what, fmt.Sprintf("%s = %q: %s.", what, path, err)))
		return nil, "", false
	}
	return b, full, true
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (l *loader) decodeCalendar(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, calendarSchema)
	a := l.attrs(c.Attributes)
	cal := Calendar{Name: name, Weekend: []string{"sat", "sun"}, DeclRange: b.DefRange}
	rules := &when.Calendar{Weekend: map[time.Weekday]bool{}, Days: map[string]bool{}}
	if _, rngs := a.strs("weekend", &cal.Weekend); rngs != nil {
		for i, d := range cal.Weekend {
			if _, known := when.Weekdays[d]; !known {
				a.errorf(rngs[i], "Invalid weekend day", "weekend entry %q: use sun, mon, tue, wed, thu, fri or sat.", d)
			}
		}
	}
	for _, d := range cal.Weekend {
		if wd, known := when.Weekdays[d]; known {
			rules.Weekend[wd] = true
		}
	}
	if at := a.str("file", &cal.File); at != nil {
		if data, full, read := l.readSide(at, cal.File, "file", when.MaxCalendarBytes); read {
			cal.FileSHA256 = digest(data)
			days, errs := when.ParseCalendarDays(bytes.NewReader(data))
			for _, err := range errs {
				var le *when.LineError
				if errors.As(err, &le) {
					a.errorf(at.Expr.Range(), "Invalid calendar file", "%s:%d: %s.", full, le.Line, le.Msg)
				} else {
					a.errorf(at.Expr.Range(), "Invalid calendar file", "%s: %s.", full, err)
				}
			}
			rules.Days = days
			l.checkCalendarEnds(at, name, full, days)
		}
	}
	cal.cal = rules
	if ok {
		l.cfg.Calendars = append(l.cfg.Calendars, cal)
	}
}

// CalendarRunningOut is the summary of the warning about a calendar file
// whose dates end soon.
const CalendarRunningOut = "Calendar running out"

// CalendarEndsWarning is how soon before a calendar file's last listed
// date the loader warns that it runs out.
const CalendarEndsWarning = 8 * 7 * 24 * time.Hour

// checkCalendarEnds warns about a calendar file whose dates end within
// CalendarEndsWarning: past its last date only the weekend counts, and a
// trigger on working days fires on the next year's holidays.
func (l *loader) checkCalendarEnds(at *hcl.Attribute, name, file string, days map[string]bool) {
	if len(days) == 0 {
		return // a calendar of weekend days only
	}
	last := ""
	for d := range days {
		last = max(last, d) // YYYY-MM-DD sorts as text
	}
	now := time.Now() // like the slot check: whenever validate runs
	if last >= now.Add(CalendarEndsWarning).Format(time.DateOnly) {
		return
	}
	l.diags = append(l.diags, warnAt(at.Expr.Range(), CalendarRunningOut,
		fmt.Sprintf("calendar %q: %s lists no date after %s; after it only the weekend counts, so holidays and shifted working days are not known. Add the next year's dates.", name, file, last)))
}

func (l *loader) decodeTrigger(b *hcl.Block) {
	name, ok := l.declare(b)
	c := l.content(b.Body, triggerSchema)
	a := l.attrs(c.Attributes)
	t := Trigger{Name: name, DeclRange: b.DefRange}
	what := fmt.Sprintf("trigger %q", name)
	if at := a.str("process", &t.Process); at != nil {
		l.refs = append(l.refs, ref{kind: "process", name: t.Process, rng: at.Expr.Range(), from: what + " process"})
	}
	if at := a.str("customer", &t.Customer); at != nil && t.Customer != "" {
		l.refs = append(l.refs, ref{kind: "customer", name: t.Customer, rng: at.Expr.Range(), from: what + " customer"})
	}
	if at := a.str("cron", &t.Cron); at != nil {
		cr, err := ParseCron(t.Cron)
		if err != nil {
			a.errorf(at.Expr.Range(), "Invalid cron expression", "cron = %q: %s.", t.Cron, err)
		}
		t.Start = cr
	}
	if at := a.str("timezone", &t.Timezone); at != nil {
		if err := checkTimezone(t.Timezone); err != nil {
			a.errorf(at.Expr.Range(), "Invalid timezone", "timezone = %q: %s; use an IANA name such as \"Asia/Shanghai\" or \"UTC\".", t.Timezone, err)
			t.Timezone = ""
		}
	}
	calAt := a.str("calendar", &t.Calendar)
	if calAt != nil {
		l.refs = append(l.refs, ref{kind: "calendar", name: t.Calendar, rng: calAt.Expr.Range(), from: what + " calendar"})
	}
	if at := a.str("days", &t.Days); at != nil {
		if a.oneOf(at, "days", t.Days, string(when.Working), string(when.NonWorking)) && calAt == nil {
			a.errorf(at.Expr.Range(), "days without calendar", "days = %q says which days of a calendar the trigger fires on; name the calendar too (calendar = \"...\").", t.Days)
		}
	}
	if calAt != nil && t.Calendar != "" && t.Days == "" {
		l.diags = append(l.diags, warnAt(calAt.Expr.Range(), "calendar without days",
			fmt.Sprintf("trigger %q names calendar %q but no days: it fires on every day its cron names, holidays included; add days = \"working\" or \"non_working\".", name, t.Calendar)))
	}
	if at := a.str("catch_up", &t.CatchUp); at != nil {
		rules := make([]string, len(when.CatchUps))
		for i, r := range when.CatchUps {
			rules[i] = string(r)
		}
		a.oneOf(at, "catch_up", t.CatchUp, rules...)
	}
	if t.CatchUp == "" {
		t.CatchUp = string(when.DefaultCatchUp)
	}
	if at := a.str("label", &t.Label); at != nil && len(t.Label) > 256 {
		a.errorf(at.Expr.Range(), "Invalid label", "label is %d bytes; a batch's label holds at most 256.", len(t.Label))
	}
	if at := a.str("slot", &t.Slot); at != nil {
		l.triggerSlots[name] = at.Expr.Range()
	}
	l.decodeTriggerInputs(a, c, &t)
	if ok {
		l.cfg.Triggers = append(l.cfg.Triggers, t)
	}
}

func (l *loader) decodeTriggerInputs(a attrs, c *hcl.BodyContent, t *Trigger) {
	var sources []*hcl.Attribute
	for _, n := range []string{"inputs", "inputs_file", "input_template"} {
		if at, ok := c.Attributes[n]; ok {
			sources = append(sources, at)
		}
	}
	if len(sources) > 1 {
		a.errorf(sources[1].NameRange, "Conflicting trigger inputs",
			"%s and %s are both set; a trigger takes its inputs from exactly one of inputs, inputs_file or input_template (none: one task with {}).", sources[0].Name, sources[1].Name)
		return
	}
	if at, ok := c.Attributes["inputs"]; ok {
		v, diags := at.Expr.Value(nil)
		l.diags = append(l.diags, diags...)
		if diags.HasErrors() {
			return
		}
		if !v.Type().IsTupleType() && !v.Type().IsListType() || v.IsNull() {
			a.errorf(at.Expr.Range(), "Invalid inputs", "inputs must be a list of objects, one per task: inputs = [{ period = \"2026-01\" }].")
			return
		}
		if n := v.LengthInt(); n == 0 || n > MaxTriggerInputs {
			a.errorf(at.Expr.Range(), "Invalid inputs", "inputs has %d entries; a run is 1 to %d tasks.", n, MaxTriggerInputs)
			return
		}
		var all []json.RawMessage
		for i, it := 0, v.ElementIterator(); it.Next(); i++ {
			_, e := it.Element()
			if !e.Type().IsObjectType() && !e.Type().IsMapType() {
				a.errorf(at.Expr.Range(), "Invalid inputs", "inputs entry %d is not an object; each entry is one task's input, e.g. { period = \"2026-01\" }.", i)
				return
			}
			js, err := ctyjson.Marshal(e, e.Type())
			if err != nil || !e.IsWhollyKnown() {
				a.errorf(at.Expr.Range(), "Invalid inputs", "inputs entry %d cannot be written as JSON.", i)
				return
			}
			all = append(all, js)
		}
		if msg := checkInputs(all); msg != "" {
			a.errorf(at.Expr.Range(), "Invalid inputs", "%s.", msg)
			return
		}
		text, _ := json.Marshal(all)
		t.Inputs, t.inputs = string(text), all
	}
	if at := a.str("inputs_file", &t.InputsFile); at != nil {
		data, full, ok := l.readSide(at, t.InputsFile, "inputs_file", MaxTriggerInputBytes)
		if !ok {
			return
		}
		t.InputsSHA256 = digest(data)
		all, err := parseInputs(data)
		if err == nil {
			if msg := checkInputs(all); msg != "" {
				err = errors.New(msg)
			}
		}
		if err != nil {
			a.errorf(at.Expr.Range(), "Invalid inputs_file", "%s: %s.", full, err)
			return
		}
		t.inputs = all
	}
	if at := a.str("input_template", &t.InputTemplate); at != nil {
		tp, err := when.ParseTemplate(t.InputTemplate)
		if err == nil {
			// Rendered once now, so that a field the data has not or a
			// result that is no JSON object is a load error, not a run
			// that fails at 02:00.
			_, err = when.Render(tp, when.Data(t.Name, time.Date(2026, 1, 31, 2, 0, 0, 0, time.UTC), time.UTC))
		}
		if err != nil {
			a.errorf(at.Expr.Range(), "Invalid input_template", "%s. The template sees .Date, .Time, .Month, .Prev, .Trigger and .At (the scheduled time in the trigger's zone).", err)
			return
		}
		t.tmpl = tp
	}
}

// checkInputs applies the queue's rules on inputs at load, so that a run
// is never refused at its time: a bounded count of JSON objects, none
// with a "credentials" field (secrets are never stored with tasks).
func checkInputs(all []json.RawMessage) string {
	if len(all) == 0 || len(all) > MaxTriggerInputs {
		return fmt.Sprintf("%d inputs; a run is 1 to %d tasks", len(all), MaxTriggerInputs)
	}
	for i, in := range all {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(in, &obj); err != nil || obj == nil {
			return fmt.Sprintf("input %d is not a JSON object", i+1)
		}
		if _, ok := obj["credentials"]; ok {
			return fmt.Sprintf("input %d has a \"credentials\" field; secrets are never stored with tasks: store them with `rpacloud credential put` and bind them to the process", i+1)
		}
	}
	return ""
}

// parseInputs reads a JSON array of objects, or JSON lines (one object a
// line, blank lines ignored).
func parseInputs(data []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("[")) {
		var all []json.RawMessage
		if err := json.Unmarshal(trimmed, &all); err != nil {
			return nil, fmt.Errorf("not a JSON array: %v", err)
		}
		return all, nil
	}
	var all []json.RawMessage
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxTriggerInputBytes+1)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			return nil, fmt.Errorf("line %d is not JSON (the file is a JSON array or one JSON object a line)", n)
		}
		all = append(all, json.RawMessage(append([]byte(nil), line...)))
		if len(all) > MaxTriggerInputs {
			break
		}
	}
	return all, sc.Err()
}

// finishTriggers resolves what needs every file: the customer (the
// process's owner by default, and never another's process), the time zone
// (the server's by default), the calendar, and the slot warnings.
func (l *loader) finishTriggers() {
	procs := map[string]Process{}
	for _, p := range l.cfg.Processes {
		procs[p.Name] = p
	}
	cals := map[string]*when.Calendar{}
	for _, c := range l.cfg.Calendars {
		cals[c.Name] = c.cal
	}
	serverLoc := time.UTC
	if tz := l.cfg.Server.Timezone; tz != "" {
		if loc, err := time.LoadLocation(tz); err == nil {
			serverLoc = loc
		}
	}
	for i := range l.cfg.Triggers {
		t := &l.cfg.Triggers[i]
		t.loc = serverLoc
		if t.Timezone != "" {
			if loc, err := time.LoadLocation(t.Timezone); err == nil {
				t.loc = loc
			}
		}
		t.Timezone = t.loc.String()
		t.cal = cals[t.Calendar]
		l.checkFires(t)
		p, known := procs[t.Process]
		if !known {
			continue // reported as an undefined process
		}
		switch {
		case p.Owner != "" && t.Customer != "" && t.Customer != p.Owner:
			l.diags = append(l.diags, errAt(t.DeclRange, "Trigger for another customer",
				fmt.Sprintf("trigger %q runs process %q for customer %q, but the process belongs to %q and runs only its owner's work; drop customer or set it to %q.", t.Name, p.Name, t.Customer, p.Owner, p.Owner)))
		case p.Owner == "" && t.Customer == "":
			l.diags = append(l.diags, errAt(t.DeclRange, "Trigger without customer",
				fmt.Sprintf("process %q is shared (it has no owner), so trigger %q must say whose batches it starts: customer = \"...\".", p.Name, t.Name)))
		case t.Customer == "":
			t.Customer = p.Owner
		}
		l.checkSlot(t, p)
	}
}

// checkFires refuses a trigger whose calendar filter keeps none of its
// cron's runs for a year (days = "working" with a calendar of only
// holidays): it would never fire, and nothing would say so. A cron that
// is rare by itself ("0 0 29 2 *") is the cron's business, not this.
func (l *loader) checkFires(t *Trigger) {
	if t.Start.IsZero() || t.cal == nil || t.Days == "" {
		return
	}
	from := time.Now() // like the slot check: the year ahead, whenever validate runs
	year := from.AddDate(1, 0, 0)
	if c := t.Start.Next(from.In(t.Location())); c.IsZero() || c.After(year) {
		return
	}
	if n := t.Schedule().Next(from); n.IsZero() || n.After(year) {
		l.diags = append(l.diags, errAt(t.DeclRange, "Trigger that never fires",
			fmt.Sprintf("trigger %q (cron %q, days = %q of calendar %q) has no run within a year from %s: the calendar drops every day the cron fires on.",
				t.Name, t.Cron, t.Days, t.Calendar, from.In(t.Location()).Format(time.DateOnly))))
	}
}

// checkSlot warns about a trigger whose runs over SlotCheckHorizon fall
// outside the slot it names, or that names no slot of a process that
// books some: its runs are not on the run schedule its department booked.
func (l *loader) checkSlot(t *Trigger, p Process) {
	if t.Start.IsZero() {
		return
	}
	if t.Slot == "" {
		if len(p.Schedules) > 0 {
			names := make([]string, len(p.Schedules))
			for i, s := range p.Schedules {
				names[i] = s.Name
			}
			l.diags = append(l.diags, warnAt(t.DeclRange, "Trigger outside the run schedule",
				fmt.Sprintf("process %q books time slots (%s) but trigger %q names none of them: its runs are not on the run schedule; add slot = \"...\".", p.Name, strings.Join(names, ", "), t.Name)))
		}
		return
	}
	rng := l.triggerSlots[t.Name]
	var slot *Schedule
	for i := range p.Schedules {
		if p.Schedules[i].Name == t.Slot {
			slot = &p.Schedules[i]
		}
	}
	if slot == nil {
		names := make([]string, len(p.Schedules))
		for i, s := range p.Schedules {
			names[i] = s.Name
		}
		detail := fmt.Sprintf("trigger %q names slot %q, but process %q has no schedule block of that name.", t.Name, t.Slot, p.Name)
		if len(names) > 0 {
			detail += " Its slots: " + strings.Join(names, ", ") + "."
		}
		l.diags = append(l.diags, errAt(rng, "Undefined slot", detail))
		return
	}
	if slot.Start.IsZero() {
		return
	}
	slotLoc := time.UTC
	if slot.Timezone != "" {
		if loc, err := time.LoadLocation(slot.Timezone); err == nil {
			slotLoc = loc
		}
	}
	from := time.Now() // the horizon is the next weeks, whenever validate runs
	runs, _ := t.Schedule().Runs(from, from.Add(SlotCheckHorizon), 500)
	for _, r := range runs {
		start := slot.Start.Next(r.Add(-slot.Duration).In(slotLoc))
		if start.IsZero() || start.After(r) {
			l.diags = append(l.diags, warnAt(rng, "Trigger outside its slot",
				fmt.Sprintf("trigger %q fires at %s (%s), outside slot %q of process %q (cron %q for %s): the run is not in the time its department booked.",
					t.Name, r.In(t.Location()).Format("2006-01-02 15:04"), t.Location(), slot.Name, p.Name, slot.Cron, slot.Duration)))
			return
		}
	}
}
