package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rpacloud/rpacloud/core/gqlclient"
)

const processLong = `A process's lifecycle S1–S5 (stage, gates, history), recorded remote
access with .rdp download, and the run schedule with its clashes.

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
  rpacloud process pause P [--reason T]
  rpacloud process resume P`

// processUsage is printed after a wrong number of arguments, as before
// cobra.
const processUsage = "usage:\n" + `  rpacloud process status P
  rpacloud process advance P ACTION [--check ITEM]... [--batch ID]... [--note T]
        [--fault-category process|system|network|data|other --fault TEXT]
        [--signoff-name N --signoff-department D [--signoff-comment C]]
      ACTION: ACQUIRE_VM PREPARE_VM DEVELOP PASS_TEST FAIL_TEST PASS_TRIAL FAIL_TRIAL MAINTENANCE
  rpacloud process connect P VM [--purpose T] [-o FILE.rdp]
  rpacloud process book P --slot S --cron "0 9 * * 1-5" --duration 90m [--timezone Z]
        [--robot R] [--robots N] [--department D] [--accept-clash]
  rpacloud process cancel-booking PROCESS/SLOT
  rpacloud process schedule [--pool P] [--days N]
  rpacloud process pause P [--reason T]
  rpacloud process resume P
`

func newProcessCmd() *cobra.Command {
	return group(&cobra.Command{Use: "process", Short: "lifecycle S1–S5, remote access, run schedule, pause", Long: processLong},
		append([]*cobra.Command{newProcessStatusCmd(), newProcessAdvanceCmd(), newProcessConnectCmd(),
			newProcessBookCmd(), newProcessCancelBookingCmd(), newProcessScheduleCmd()},
			pauseCmds("process", pauseProcessQ, resumeProcessQ, "pauseProcess", "resumeProcess")...)...)
}

// processCmd builds a process subcommand (see groupCmd).
func processCmd(cmd *cobra.Command, n int, what string, body clientBody) *cobra.Command {
	return groupCmd("process", processUsage, cmd, n, what, body)
}

// clientBody is the work of a subcommand that talks to the daemon.
type clientBody func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int

// groupCmd builds a subcommand of group (process, trigger, …): the
// connection flags, n positional arguments (checked in the body so the
// message stays the one scripts know, followed by the group's usage) and
// the body run with a client.
func groupCmd(group, usage string, cmd *cobra.Command, n int, what string, body clientBody) *cobra.Command {
	var cf clientFlags
	cf.register(cmd.Flags())
	cmd.Args = cobra.ArbitraryArgs
	sub := cmd.Name()
	cmd.RunE = func(cmd *cobra.Command, pos []string) error {
		stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
		if len(pos) != n {
			fmt.Fprintf(stderr, "rpacloud %s %s: expected %s\n\n%s", group, sub, what, usage)
			return exitCode(exitUsage)
		}
		fail := func(err error) int {
			fmt.Fprintf(stderr, "rpacloud %s %s: %v\n", group, sub, err)
			return exitFailure
		}
		c, err := cf.client()
		if err != nil {
			return exit(fail(err))
		}
		return exit(body(cmd.Context(), c, pos, stdout, fail))
	}
	return cmd
}

func newProcessStatusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status P", Short: "a process's stage, allowed actions, checklist, history and remote access",
		Long: `A process's stage, allowed actions, checklist, history and remote access.

-o json prints {"process", "stage", "allowed": [...], "checklist": [{"action",
"item"}], "history": [{"seq", "action", "from", "to", "actor", "at",
"note"}], "access": [{"user", "vm", "protocol", "stage", "at"}]}.`}
	out := addOutputFlag(cmd)
	return processCmd(cmd, 1, "the process name", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		return processStatus(ctx, c, pos[0], out, stdout, fail)
	})
}

func newProcessAdvanceCmd() *cobra.Command {
	var checks, batches []string
	var note, faultCat, fault, soName, soDept, soComment string
	cmd := &cobra.Command{Use: "advance P ACTION", Short: "move a process to its next stage",
		Long: `Move a process to its next stage; refused with every unmet condition.

ACTION: ACQUIRE_VM PREPARE_VM DEVELOP PASS_TEST FAIL_TEST PASS_TRIAL FAIL_TRIAL MAINTENANCE

-o json prints {"process", "stage", "allowed": [...]}.`}
	f := cmd.Flags()
	f.StringArrayVar(&checks, "check", nil, "checklist item done (repeat)")
	f.StringArrayVar(&batches, "batch", nil, "test or trial batch ID to link (repeat)")
	f.StringVar(&note, "note", "", "note")
	f.StringVar(&faultCat, "fault-category", "", "where the fault is: process, system, network, data, other")
	f.StringVar(&fault, "fault", "", "the located fault")
	f.StringVar(&soName, "signoff-name", "", "business user who accepts")
	f.StringVar(&soDept, "signoff-department", "", "their department")
	f.StringVar(&soComment, "signoff-comment", "", "comment")
	out := addOutputFlag(cmd)
	return processCmd(cmd, 2, "the process and the action", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		in := map[string]any{"process": pos[0], "action": strings.ToUpper(pos[1]), "checklist": nonNil(checks), "batchIDs": nonNil(batches)}
		for k, v := range map[string]string{"note": note, "faultDescription": fault, "signOffName": soName, "signOffDepartment": soDept, "signOffComment": soComment} {
			if v != "" {
				in[k] = v
			}
		}
		if faultCat != "" {
			in["faultCategory"] = strings.ToUpper(faultCat)
		}
		var res struct {
			TransitionProcess struct {
				Stage   string   `json:"stage"`
				Allowed []string `json:"allowed"`
			} `json:"transitionProcess"`
		}
		if err := c.Do(ctx, `mutation($in: LifecycleTransitionInput!) { transitionProcess(input: $in) { stage allowed } }`, map[string]any{"in": in}, &res); err != nil {
			return fail(err)
		}
		t := res.TransitionProcess
		if out.JSON() {
			return jsonResult(stdout, map[string]any{"process": pos[0], "stage": t.Stage, "allowed": nonNil(t.Allowed)}, fail)
		}
		fmt.Fprintf(stdout, "%s is now at %s (next: %s)\n", pos[0], t.Stage, strings.Join(t.Allowed, ", "))
		return 0
	})
}

func newProcessConnectCmd() *cobra.Command {
	var purpose, file string
	cmd := &cobra.Command{Use: "connect P VM [--purpose T] [-o FILE.rdp]", Short: "record remote access to a process's VM and print its endpoint",
		Long: `Record remote access to one of a process's VMs and print its endpoint; with
-o, write the .rdp file of an RDP endpoint. Here -o names that file, as it
did before other commands took -o json, so connect prints text only.`}
	cmd.Flags().StringVar(&purpose, "purpose", "", "why you connect")
	cmd.Flags().StringVarP(&file, "rdp-file", "o", "", "write the .rdp file here (RDP endpoints)")
	return processCmd(cmd, 2, "the process and the VM", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
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
		if file != "" {
			if out.ConnectRemote.RdpURL == "" {
				return fail(fmt.Errorf("VM %s is reached by %s; there is no .rdp file", e.VM, e.Protocol))
			}
			if err := download(ctx, c, out.ConnectRemote.RdpURL, file); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "wrote %s\n", file)
		}
		return 0
	})
}

func newProcessBookCmd() *cobra.Command {
	var slot, cron, tz, robot, dept string
	var dur time.Duration
	var robots int
	var accept bool
	cmd := &cobra.Command{Use: "book P --slot S --cron \"0 9 * * 1-5\" --duration 90m", Short: "book a recurring run slot for a process",
		Long: `Book a recurring run slot for a process; clashes refuse the booking unless
--accept-clash, and then they are flagged in the schedule.

-o json prints {"booking", "clashes"} (the booking id and the number of
accepted clashes).`}
	f := cmd.Flags()
	f.StringVar(&slot, "slot", "", "slot name, unique within the process")
	f.StringVar(&cron, "cron", "", "5-field cron of each slot's start")
	f.DurationVar(&dur, "duration", 0, "slot length, e.g. 90m")
	f.StringVar(&tz, "timezone", "", "IANA time zone (default UTC)")
	f.StringVar(&robot, "robot", "", "reserve this robot")
	f.IntVar(&robots, "robots", 1, "robots at once")
	f.StringVar(&dept, "department", "", "booking department (default the process owner)")
	f.BoolVar(&accept, "accept-clash", false, "book despite clashes (flagged in the schedule)")
	out := addOutputFlag(cmd)
	return processCmd(cmd, 1, "the process name", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		in := map[string]any{"process": pos[0], "slot": slot, "cron": cron, "durationMinutes": int(dur.Minutes()), "robots": robots, "acceptClash": accept}
		for k, v := range map[string]string{"timezone": tz, "robot": robot, "department": dept} {
			if v != "" {
				in[k] = v
			}
		}
		var res struct {
			BookSlot struct {
				Booking struct {
					ID string `json:"id"`
				} `json:"booking"`
				Clashes []json.RawMessage `json:"clashes"`
			} `json:"bookSlot"`
		}
		if err := c.Do(ctx, `mutation($in: BookSlotInput!) { bookSlot(input: $in) { booking { id } clashes { kind } } }`, map[string]any{"in": in}, &res); err != nil {
			return fail(err)
		}
		if out.JSON() {
			return jsonResult(stdout, map[string]any{"booking": res.BookSlot.Booking.ID, "clashes": len(res.BookSlot.Clashes)}, fail)
		}
		fmt.Fprintf(stdout, "booked %s", res.BookSlot.Booking.ID)
		if n := len(res.BookSlot.Clashes); n > 0 {
			fmt.Fprintf(stdout, " with %d accepted clashes (flagged in the schedule)", n)
		}
		fmt.Fprintln(stdout)
		return 0
	})
}

func newProcessCancelBookingCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cancel-booking PROCESS/SLOT", Short: "cancel a booked run slot"}
	return processCmd(cmd, 1, "the booking id (process/slot)", func(ctx context.Context, c *gqlclient.Client, pos []string, stdout io.Writer, fail func(error) int) int {
		if err := c.Do(ctx, `mutation($id: String!) { cancelBooking(id: $id) }`, map[string]any{"id": pos[0]}, nil); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "cancelled %s\n", pos[0])
		return 0
	})
}

func newProcessScheduleCmd() *cobra.Command {
	var pool string
	var days int
	cmd := &cobra.Command{Use: "schedule [--pool P] [--days N]", Short: "the run schedule's bookings and the clashes ahead",
		Long: `The run schedule's bookings and the clashes in the next days.

-o json prints {"days", "bookings": [{"id", "process", "department", "pool",
"robot", "robots", "cron", "duration_minutes", "timezone"}], "clashes":
[{"start", "kind", "pool", "robot", "bookings": [...], "needed", "max"}]};
robot is null when any robot will do.`}
	cmd.Flags().StringVar(&pool, "pool", "", "one pool only")
	cmd.Flags().IntVar(&days, "days", 7, "days ahead to check for clashes (at most 62)")
	out := addOutputFlag(cmd)
	return processCmd(cmd, 0, "no positional argument", func(ctx context.Context, c *gqlclient.Client, _ []string, stdout io.Writer, fail func(error) int) int {
		return processSchedule(ctx, c, pool, days, out, stdout, fail)
	})
}

// lifecycleJSON is what `process status -o json` prints; the GraphQL
// answer has the same field names.
type lifecycleJSON struct {
	Process   string           `json:"process"`
	Stage     string           `json:"stage"`
	Allowed   []string         `json:"allowed"`
	Checklist []checklistJSON  `json:"checklist"`
	History   []transitionJSON `json:"history"`
	Access    []accessJSON     `json:"access"`
}

type checklistJSON struct {
	Action string `json:"action"`
	Item   string `json:"item"`
}

type transitionJSON struct {
	Seq    int       `json:"seq"`
	Action string    `json:"action"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Note   string    `json:"note"`
}

type accessJSON struct {
	User     string    `json:"user"`
	VM       string    `json:"vm"`
	Protocol string    `json:"protocol"`
	Stage    string    `json:"stage"`
	At       time.Time `json:"at"`
}

func processStatus(ctx context.Context, c *gqlclient.Client, name string, o *output, stdout io.Writer, fail func(error) int) int {
	var out struct {
		ProcessLifecycle lifecycleJSON `json:"processLifecycle"`
	}
	q := `query($p: String!) { processLifecycle(process: $p) { stage allowed checklist { action item }
		history { seq from to action actor at note } access { user vm protocol stage at } } }`
	if err := c.Do(ctx, q, map[string]any{"p": name}, &out); err != nil {
		return fail(err)
	}
	l := out.ProcessLifecycle
	if o.JSON() {
		l.Process = name
		l.Allowed = nonNil(l.Allowed)
		if l.Checklist == nil {
			l.Checklist = []checklistJSON{}
		}
		if l.History == nil {
			l.History = []transitionJSON{}
		}
		if l.Access == nil {
			l.Access = []accessJSON{}
		}
		return jsonResult(stdout, l, fail)
	}
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

// bookingJSON and clashJSON are what `process schedule -o json` prints,
// as {"days", "bookings", "clashes"}.
type bookingJSON struct {
	ID              string  `json:"id"`
	Process         string  `json:"process"`
	Department      string  `json:"department"`
	Pool            string  `json:"pool"`
	Robot           *string `json:"robot"`
	Robots          int     `json:"robots"`
	Cron            string  `json:"cron"`
	DurationMinutes int     `json:"duration_minutes"`
	Timezone        string  `json:"timezone"`
}

type clashJSON struct {
	Start    time.Time `json:"start"`
	Kind     string    `json:"kind"`
	Pool     string    `json:"pool"`
	Robot    *string   `json:"robot"`
	Bookings []string  `json:"bookings"`
	Needed   int       `json:"needed"`
	Max      int       `json:"max"`
}

func processSchedule(ctx context.Context, c *gqlclient.Client, pool string, days int, o *output, stdout io.Writer, fail func(error) int) int {
	var out struct {
		ScheduleBookings []struct {
			ID, Process, Department, Pool, Cron, Timezone string
			Robot                                         *string
			Robots, DurationMinutes                       int
		} `json:"scheduleBookings"`
		ScheduleClashes []clashJSON `json:"scheduleClashes"`
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
	if o.JSON() {
		bookings := make([]bookingJSON, 0, len(out.ScheduleBookings))
		for _, b := range out.ScheduleBookings {
			bookings = append(bookings, bookingJSON{ID: b.ID, Process: b.Process, Department: b.Department, Pool: b.Pool,
				Robot: b.Robot, Robots: b.Robots, Cron: b.Cron, DurationMinutes: b.DurationMinutes, Timezone: b.Timezone})
		}
		clashes := append([]clashJSON{}, out.ScheduleClashes...)
		return jsonResult(stdout, map[string]any{"days": days, "bookings": bookings, "clashes": clashes}, fail)
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

// jsonResult prints v as the command's JSON output.
func jsonResult(w io.Writer, v any, fail func(error) int) int {
	if err := writeJSON(w, v); err != nil {
		return fail(err)
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
