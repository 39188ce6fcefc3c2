package documents

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// The run schedule lists the pool's triggers with their runs in the
// window; a trigger outside any booked slot is marked.
func TestScheduleTriggers(t *testing.T) {
	d := fixture()
	run := func(day, hour int) time.Time { return time.Date(2026, 11, day, hour, 0, 0, 0, time.UTC) }
	d.Schedule.Triggers = []TriggerRuns{
		{Name: "vat-nightly", Process: "vat-filing", Department: "acme-finance", Cron: "0 2 * * *", Timezone: "Asia/Shanghai",
			Calendar: "cn", Days: "working", Slot: "morning", Runs: []time.Time{run(2, 18), run(3, 18), run(4, 18), run(5, 18), run(6, 18), run(7, 18)}},
		{Name: "payroll-adhoc", Process: "payroll-tax", Department: "acme-hr", Cron: "0 12 1 * *", Timezone: "Asia/Shanghai"},
	}
	b, err := Render(context.Background(), Schedule, XLSX, d, English, Printer{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cells(t, f, "Triggers", map[string]string{
		"A6": "Trigger", "H6": "Next runs",
		"A7": "vat-nightly", "B7": "ACME Finance", "C7": "vat-filing", "D7": "0 2 * * * Asia/Shanghai", "E7": "cn (working days)", "F7": "morning", "G7": "6",
		"H7": "2026-11-03 02:00 CST, 2026-11-04 02:00 CST, 2026-11-05 02:00 CST, 2026-11-06 02:00 CST, 2026-11-07 02:00 CST, …",
		"A8": "payroll-adhoc", "E8": "—", "F8": "—", "G8": "0", "H8": "—",
	})
}
