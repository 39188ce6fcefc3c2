package documents

import (
	"time"

	"github.com/rpacloud/rpacloud/core/lifecycle"
	"github.com/rpacloud/rpacloud/core/schedule"
)

// fixture is a small process at S5 with one clash and one idle robot.
func fixture() Data {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	req := lifecycle.Requirements{Process: "vat-filing", Pool: "tax-rpa", Software: []string{"UiPath Robot"}, Network: "tax-bureau", Credentials: []string{"etax/acme"}}
	ev := func(a lifecycle.Action) lifecycle.Evidence {
		e := lifecycle.Evidence{Actor: "li.wei", At: at, Checklist: map[string]bool{}}
		for _, it := range lifecycle.RequiredItems(a, req) {
			e.Checklist[it] = true
		}
		return e
	}
	prep := ev(lifecycle.PrepareVM)
	prep.Endpoints = []string{"rdp://10.20.3.11:3389"}
	test := ev(lifecycle.PassTest)
	test.Runs = []lifecycle.Run{{BatchID: 12, Purpose: lifecycle.TestRun, Process: "vat-filing", Pool: "tax-rpa", Total: 5, Succeeded: 5, Finished: true, EndedAt: at}}
	fail := ev(lifecycle.FailTest)
	fail.Fault = &lifecycle.Fault{Category: lifecycle.FaultNetwork, Description: "proxy blocked the portal"}
	return Data{
		Generated: at, Organisation: "ACME", ServerURL: "https://rpacloud.tax.example", Support: "RPA desk, ext. 8080", Timezone: "Asia/Shanghai",
		Process: Process{Name: "vat-filing", Kind: "vendor", Runner: "uipath-prod", Vendor: "uipath", Package: "TaxFiling.VAT", Owner: "ACME Finance", OwnerParent: "ACME", MaxDuration: 20 * time.Minute, Retries: 3, Credentials: []string{"etax/acme"}, Batches: 2, Tasks: 25, Succeeded: 24, Failed: 1, LastRun: at},
		Pool:    Pool{Name: "tax-rpa", Provider: "local", Min: 2, Max: 2, Network: "tax-bureau", Proxy: "http://egress:3128", Allow: []string{"etax.example.gov"}, Deny: []string{"*"}, Software: []string{"UiPath Robot"}},
		VMs:     []VM{{Name: "tax-rpa-1", State: "running", Protocol: "rdp", Host: "10.20.3.11", Port: 3389, Username: "rpa"}},
		Stage:   lifecycle.S5Trial,
		History: []lifecycle.Record{
			{Seq: 1, From: lifecycle.S1Acquire, To: lifecycle.S2Prepare, Action: lifecycle.AcquireVM, Evidence: ev(lifecycle.AcquireVM)},
			{Seq: 2, From: lifecycle.S2Prepare, To: lifecycle.S3Develop, Action: lifecycle.PrepareVM, Evidence: prep},
			{Seq: 3, From: lifecycle.S3Develop, To: lifecycle.S4Test, Action: lifecycle.Develop, Evidence: ev(lifecycle.Develop)},
			{Seq: 4, From: lifecycle.S4Test, To: lifecycle.S3Develop, Action: lifecycle.FailTest, Evidence: fail},
			{Seq: 5, From: lifecycle.S3Develop, To: lifecycle.S4Test, Action: lifecycle.Develop, Evidence: ev(lifecycle.Develop)},
			{Seq: 6, From: lifecycle.S4Test, To: lifecycle.S5Trial, Action: lifecycle.PassTest, Evidence: test},
		},
		Access:  []lifecycle.Access{{User: "dev.zhang", VM: "tax-rpa-1", Protocol: "rdp", Stage: lifecycle.S3Develop, At: at}},
		Require: req,
		Schedule: ScheduleData{
			From: time.Date(2026, 11, 1, 16, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 8, 16, 0, 0, 0, time.UTC),
			Bookings: []schedule.Booking{
				{ID: "vat-filing/morning", Process: "vat-filing", Department: "acme-finance", Pool: "tax-rpa", Cron: "0 9 * * 1-5", Duration: 90 * time.Minute, Timezone: "Asia/Shanghai"},
				{ID: "payroll-tax/window", Process: "payroll-tax", Department: "acme-hr", Pool: "tax-rpa", Robots: 2, Cron: "0 10 * * 1-5", Duration: 2 * time.Hour, Timezone: "Asia/Shanghai"},
			},
			Pools:       []schedule.Pool{{Name: "tax-rpa", Max: 2}},
			Clashes:     []schedule.Summary{{Kind: schedule.CapacityClash, Pool: "tax-rpa", Bookings: []string{"payroll-tax/window", "vat-filing/morning"}, Count: 5, First: time.Date(2026, 11, 2, 2, 0, 0, 0, time.UTC), Needed: 3, Max: 2}},
			Utilisation: []RobotUse{{Pool: "tax-rpa", Robot: "tax-rpa-1", Booked: 0.85, Measured: 0.62, Licensed: true}, {Pool: "tax-rpa", Robot: "tax-rpa-2", Booked: 0.02, Measured: 0.01, Licensed: true}},
			Departments: map[string]string{"acme-finance": "ACME Finance", "acme-hr": "ACME HR"},
		},
	}
}
