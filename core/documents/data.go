// Package documents generates the supporting documents of seed 000 for one
// process, from the platform's own data: the process information record
// sheet, the acceptance sheet, the run schedule and the user manual, in
// English or Chinese. Each document is first built as a neutral Doc
// (title, sections of fields, tables and text), then rendered as XLSX
// (excelize), Markdown, HTML, or PDF (headless Chromium's print-to-PDF).
// Gathering the data from the database is the caller's job, so building
// and rendering are tested without one.
package documents

import (
	"fmt"
	"time"

	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/core/schedule"
)

// Kind is one of the four documents.
type Kind string

// Kinds of document.
const (
	Record     Kind = "record"     // 流程信息记录表
	Acceptance Kind = "acceptance" // 流程验收表
	Schedule   Kind = "schedule"   // 流程运行排期表
	Manual     Kind = "manual"     // 用户操作手册
)

// Kinds lists every kind.
var Kinds = []Kind{Record, Acceptance, Schedule, Manual}

// ParseKind checks a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown document kind %q: use record, acceptance, schedule or manual", s)
}

// Format is an output format.
type Format string

// Formats.
const (
	XLSX     Format = "xlsx"
	PDF      Format = "pdf"
	Markdown Format = "md"
	HTML     Format = "html"
)

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case XLSX, PDF, Markdown, HTML:
		return f, nil
	}
	return "", fmt.Errorf("unknown document format %q: use xlsx, pdf, md or html", s)
}

// ContentType is the MIME type of a format.
func (f Format) ContentType() string {
	switch f {
	case XLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case PDF:
		return "application/pdf"
	case HTML:
		return "text/html; charset=utf-8"
	}
	return "text/markdown; charset=utf-8"
}

// Language of the labels.
type Language string

// Languages.
const (
	English Language = "en"
	Chinese Language = "zh"
)

// ParseLanguage checks a language name; "" is English.
func ParseLanguage(s string) (Language, error) {
	switch s {
	case "", "en":
		return English, nil
	case "zh", "zh-CN", "zh_CN":
		return Chinese, nil
	}
	return "", fmt.Errorf("unknown language %q: use en or zh", s)
}

// Data is what the documents say about one process. Every field comes
// from the platform: configuration, database rows, measured runs.
type Data struct {
	Generated    time.Time
	Organisation string
	ServerURL    string
	Support      string // who to call when something fails
	// Timezone is the zone times are shown in (IANA name; "" = UTC).
	Timezone string

	Process  Process
	Pool     Pool
	VMs      []VM
	Stage    lifecycle.Stage
	History  []lifecycle.Record
	Access   []lifecycle.Access
	Require  lifecycle.Requirements
	Schedule ScheduleData
}

// Process describes the process.
type Process struct {
	Name        string
	Kind        string // builtin | vendor | crawler
	Runner      string
	Vendor      string // the vendor type (uipath, aa) for vendor processes
	Package     string
	Owner       string // department display name
	OwnerParent string // its company
	MaxDuration time.Duration
	Retries     int
	Credentials []string
	// Recent outcomes, for the record sheet.
	Batches, Tasks, Succeeded, Failed int
	Cancelled                         int // by an operator (batch cancel, task stop)
	LastRun                           time.Time
}

// Pool describes the process's pool and what its VMs are prepared with.
type Pool struct {
	Name        string
	Provider    string
	Min, Max    int
	Network     string
	Proxy       string
	DNS         []string
	Allow, Deny []string
	Software    []string
	ConfigFiles []string
}

// VM is one machine of the pool and how to reach it.
type VM struct {
	Name     string
	State    string
	Protocol string // rdp | ssh | vnc; "" when the provider reported none
	Host     string
	Port     int
	Username string
}

// Endpoint renders "rdp://host:port", or "".
func (v VM) Endpoint() string {
	if v.Protocol == "" {
		return ""
	}
	return fmt.Sprintf("%s://%s:%d", v.Protocol, v.Host, v.Port)
}

// ScheduleData is the run schedule around the process: every booking of
// its pool (the pool is what departments share) and its department's
// bookings elsewhere, the clashes among them, and each robot's booked and
// measured utilisation over the window.
type ScheduleData struct {
	From, To    time.Time
	Bookings    []schedule.Booking
	Pools       []schedule.Pool
	Clashes     []schedule.Summary
	Utilisation []RobotUse
	// Departments maps customer names to display names.
	Departments map[string]string
	// Triggers are the pool's triggers (HCL trigger blocks) with their
	// runs in [From, To).
	Triggers []TriggerRuns
}

// TriggerRuns is one trigger of the run schedule and when it fires.
type TriggerRuns struct {
	Name, Process, Department string
	Cron, Timezone            string
	Calendar, Days            string // "" when none
	Slot                      string // the booked slot it fires in; "" when none
	Runs                      []time.Time
	More                      bool // runs beyond Runs in the window were left out
	// Other: another department's trigger, shown to a department's
	// reader by its run times only; every name above is "".
	Other bool
}

// RobotUse is how busy one robot (or a pool as a whole, Robot "") is.
type RobotUse struct {
	Pool     string
	Robot    string
	Booked   float64 // share of the window booked, 0..1
	Measured float64 // share of the window actually busy (attempts), 0..1
	Licensed bool    // holds a vendor licence (UiPath/AA robots)
}

// Saturation thresholds: at or above Saturated the robot needs help; below
// Idle its licence can go.
const (
	Saturated = 0.80
	Idle      = 0.10
)

// Verdict is the manager's reading of a RobotUse.
func (u RobotUse) Verdict() string {
	busiest := max(u.Booked, u.Measured)
	switch {
	case busiest >= Saturated:
		return "saturated"
	case busiest < Idle:
		return "idle"
	}
	return "ok"
}
