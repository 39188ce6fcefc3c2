package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rpacloud/rpacloud/core/gqlclient"
)

const processUsage = `usage:
  rpacloud process status P
  rpacloud process advance P ACTION [--check ITEM]... [--batch ID]... [--note T]
        [--fault-category process|system|network|data|other --fault TEXT]
        [--signoff-name N --signoff-department D [--signoff-comment C]]
      ACTION: ACQUIRE_VM PREPARE_VM DEVELOP PASS_TEST FAIL_TEST PASS_TRIAL FAIL_TRIAL MAINTENANCE
  rpacloud process connect P VM [--purpose T] [-o FILE.rdp]
  rpacloud process book P --slot S --cron "0 9 * * 1-5" --duration 90m [--timezone Z]
        [--robot R] [--robots N] [--department D] [--accept-clash]
  rpacloud process cancel-booking PROCESS/SLOT
  rpacloud process schedule [--pool P] [--days N]
`

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func runProcess(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, processUsage)
		return 2
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("process "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	// Positional arguments come first (P, ACTION, VM); flags follow.
	var pos []string
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "rpacloud process %s: %v\n", sub, err)
		return 1
	}
	need := func(n int, what string) bool {
		if len(pos) != n {
			fmt.Fprintf(stderr, "rpacloud process %s: expected %s\n\n%s", sub, what, processUsage)
			return false
		}
		return true
	}
	switch sub {
	case "status":
		if err := fs.Parse(rest); err != nil || !need(1, "the process name") {
			return 2
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		return processStatus(ctx, c, pos[0], stdout, fail)
	case "advance":
		var checks, batches multi
		var note, faultCat, fault, soName, soDept, soComment string
		fs.Var(&checks, "check", "checklist item done (repeat)")
		fs.Var(&batches, "batch", "test or trial batch ID to link (repeat)")
		fs.StringVar(&note, "note", "", "note")
		fs.StringVar(&faultCat, "fault-category", "", "where the fault is: process, system, network, data, other")
		fs.StringVar(&fault, "fault", "", "the located fault")
		fs.StringVar(&soName, "signoff-name", "", "business user who accepts")
		fs.StringVar(&soDept, "signoff-department", "", "their department")
		fs.StringVar(&soComment, "signoff-comment", "", "comment")
		if err := fs.Parse(rest); err != nil || !need(2, "the process and the action") {
			return 2
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		in := map[string]any{"process": pos[0], "action": strings.ToUpper(pos[1]), "checklist": []string(checks), "batchIDs": []string(batches)}
		if checks == nil {
			in["checklist"] = []string{}
		}
		if batches == nil {
			in["batchIDs"] = []string{}
		}
		for k, v := range map[string]string{"note": note, "faultDescription": fault, "signOffName": soName, "signOffDepartment": soDept, "signOffComment": soComment} {
			if v != "" {
				in[k] = v
			}
		}
		if faultCat != "" {
			in["faultCategory"] = strings.ToUpper(faultCat)
		}
		var out struct {
			TransitionProcess struct {
				Stage   string   `json:"stage"`
				Allowed []string `json:"allowed"`
			} `json:"transitionProcess"`
		}
		if err := c.Do(ctx, `mutation($in: LifecycleTransitionInput!) { transitionProcess(input: $in) { stage allowed } }`, map[string]any{"in": in}, &out); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s is now at %s (next: %s)\n", pos[0], out.TransitionProcess.Stage, strings.Join(out.TransitionProcess.Allowed, ", "))
		return 0
	case "connect":
		var purpose, output string
		fs.StringVar(&purpose, "purpose", "", "why you connect")
		fs.StringVar(&output, "o", "", "write the .rdp file here (RDP endpoints)")
		if err := fs.Parse(rest); err != nil || !need(2, "the process and the VM") {
			return 2
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		var out struct {
			ConnectRemote struct {
				Endpoint struct {
					VM       string `json:"vm"`
					Protocol string `json:"protocol"`
					Host     string `json:"host"`
					Port     int    `json:"port"`
					Username string `json:"username"`
				} `json:"endpoint"`
				Stage  string `json:"stage"`
				RdpURL string `json:"rdpURL"`
			} `json:"connectRemote"`
		}
		q := `mutation($p: String!, $vm: String!, $purpose: String) { connectRemote(process: $p, vm: $vm, purpose: $purpose) { endpoint { vm protocol host port username } stage rdpURL } }`
		if err := c.Do(ctx, q, map[string]any{"p": pos[0], "vm": pos[1], "purpose": purpose}, &out); err != nil {
			return fail(err)
		}
		e := out.ConnectRemote.Endpoint
		fmt.Fprintf(stdout, "%s://%s:%d (recorded for %s)\n", e.Protocol, e.Host, e.Port, out.ConnectRemote.Stage)
		if output != "" {
			if out.ConnectRemote.RdpURL == "" {
				return fail(fmt.Errorf("VM %s is reached by %s; there is no .rdp file", e.VM, e.Protocol))
			}
			if err := download(ctx, c, out.ConnectRemote.RdpURL, output); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "wrote %s\n", output)
		}
		return 0
	case "book":
		var slot, cron, tz, robot, dept string
		var dur time.Duration
		var robots int
		var accept bool
		fs.StringVar(&slot, "slot", "", "slot name, unique within the process")
		fs.StringVar(&cron, "cron", "", "5-field cron of each slot's start")
		fs.DurationVar(&dur, "duration", 0, "slot length, e.g. 90m")
		fs.StringVar(&tz, "timezone", "", "IANA time zone (default UTC)")
		fs.StringVar(&robot, "robot", "", "reserve this robot")
		fs.IntVar(&robots, "robots", 1, "robots at once")
		fs.StringVar(&dept, "department", "", "booking department (default the process owner)")
		fs.BoolVar(&accept, "accept-clash", false, "book despite clashes (flagged in the schedule)")
		if err := fs.Parse(rest); err != nil || !need(1, "the process name") {
			return 2
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		in := map[string]any{"process": pos[0], "slot": slot, "cron": cron, "durationMinutes": int(dur.Minutes()), "robots": robots, "acceptClash": accept}
		for k, v := range map[string]string{"timezone": tz, "robot": robot, "department": dept} {
			if v != "" {
				in[k] = v
			}
		}
		var out struct {
			BookSlot struct {
				Booking struct {
					ID string `json:"id"`
				} `json:"booking"`
				Clashes []json.RawMessage `json:"clashes"`
			} `json:"bookSlot"`
		}
		if err := c.Do(ctx, `mutation($in: BookSlotInput!) { bookSlot(input: $in) { booking { id } clashes { kind } } }`, map[string]any{"in": in}, &out); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "booked %s", out.BookSlot.Booking.ID)
		if n := len(out.BookSlot.Clashes); n > 0 {
			fmt.Fprintf(stdout, " with %d accepted clashes (flagged in the schedule)", n)
		}
		fmt.Fprintln(stdout)
		return 0
	case "cancel-booking":
		if err := fs.Parse(rest); err != nil || !need(1, "the booking id (process/slot)") {
			return 2
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		if err := c.Do(ctx, `mutation($id: String!) { cancelBooking(id: $id) }`, map[string]any{"id": pos[0]}, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "cancelled %s\n", pos[0])
		return 0
	case "schedule":
		var pool string
		var days int
		fs.StringVar(&pool, "pool", "", "one pool only")
		fs.IntVar(&days, "days", 7, "days ahead to check for clashes (at most 62)")
		if err := fs.Parse(rest); err != nil || !need(0, "no positional argument") {
			return 2
		}
		c, err := cf.client()
		if err != nil {
			return fail(err)
		}
		return processSchedule(ctx, c, pool, days, stdout, fail)
	}
	fmt.Fprintf(stderr, "rpacloud process: unknown subcommand %q\n\n%s", sub, processUsage)
	return 2
}

func processStatus(ctx context.Context, c *gqlclient.Client, name string, stdout io.Writer, fail func(error) int) int {
	var out struct {
		ProcessLifecycle struct {
			Stage     string   `json:"stage"`
			Allowed   []string `json:"allowed"`
			Checklist []struct {
				Action, Item string
			} `json:"checklist"`
			History []struct {
				Seq                     int
				From, To, Action, Actor string
				At                      time.Time
				Note                    string
			} `json:"history"`
			Access []struct {
				User, VM, Protocol, Stage string
				At                        time.Time
			} `json:"access"`
		} `json:"processLifecycle"`
	}
	q := `query($p: String!) { processLifecycle(process: $p) { stage allowed checklist { action item }
		history { seq from to action actor at note } access { user vm protocol stage at } } }`
	if err := c.Do(ctx, q, map[string]any{"p": name}, &out); err != nil {
		return fail(err)
	}
	l := out.ProcessLifecycle
	fmt.Fprintf(stdout, "%s: %s (next: %s)\n\nchecklist:\n", name, l.Stage, strings.Join(l.Allowed, ", "))
	for _, it := range l.Checklist {
		fmt.Fprintf(stdout, "  %-11s %s\n", it.Action, it.Item)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\n#\tACTION\tFROM\tTO\tBY\tAT\tNOTE")
	for _, h := range l.History {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Seq, h.Action, h.From, h.To, h.Actor, h.At.Format(time.RFC3339), h.Note)
	}
	_ = tw.Flush()
	if len(l.Access) > 0 {
		fmt.Fprintln(stdout, "\nremote access:")
		for _, a := range l.Access {
			fmt.Fprintf(stdout, "  %s %s %s for %s at %s\n", a.User, a.Protocol, a.VM, a.Stage, a.At.Format(time.RFC3339))
		}
	}
	return 0
}

func processSchedule(ctx context.Context, c *gqlclient.Client, pool string, days int, stdout io.Writer, fail func(error) int) int {
	var out struct {
		ScheduleBookings []struct {
			ID, Process, Department, Pool, Cron, Timezone string
			Robot                                         *string
			Robots, DurationMinutes                       int
		} `json:"scheduleBookings"`
		ScheduleClashes []struct {
			Kind, Pool string
			Robot      *string
			Bookings   []string
			Start      time.Time
			Needed     int
			Max        int
		} `json:"scheduleClashes"`
	}
	from := time.Now().UTC()
	vars := map[string]any{"from": from, "to": from.Add(time.Duration(days) * 24 * time.Hour)}
	if pool != "" {
		vars["pool"] = pool
	}
	q := `query($pool: String, $from: Time, $to: Time) { scheduleBookings(pool: $pool) { id process department pool robot robots cron durationMinutes timezone }
		scheduleClashes(pool: $pool, from: $from, to: $to) { kind pool robot bookings start needed max } }`
	if err := c.Do(ctx, q, vars, &out); err != nil {
		return fail(err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BOOKING\tDEPARTMENT\tPOOL\tROBOT\tCRON\tMINUTES\tTIMEZONE")
	for _, b := range out.ScheduleBookings {
		robot := fmt.Sprintf("any (%d)", b.Robots)
		if b.Robot != nil {
			robot = *b.Robot
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", b.ID, b.Department, b.Pool, robot, b.Cron, b.DurationMinutes, b.Timezone)
	}
	_ = tw.Flush()
	fmt.Fprintf(stdout, "\n%d clashes in the next %d days\n", len(out.ScheduleClashes), days)
	for _, c := range out.ScheduleClashes {
		fmt.Fprintf(stdout, "  %s %s %s %s", c.Start.Format(time.RFC3339), c.Kind, c.Pool, strings.Join(c.Bookings, " + "))
		if c.Kind == "CAPACITY" {
			fmt.Fprintf(stdout, " (%d robots, max %d)", c.Needed, c.Max)
		}
		if c.Robot != nil {
			fmt.Fprintf(stdout, " on %s", *c.Robot)
		}
		fmt.Fprintln(stdout)
	}
	return 0
}

// download fetches a ticket URL the daemon issued into a file.
func download(ctx context.Context, c *gqlclient.Client, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("download: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	tmp := path + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("download: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
