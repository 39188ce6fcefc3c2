package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rpacloud/rpacloud/core/dispatch"
	"github.com/rpacloud/rpacloud/core/events"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/core/store"
	"github.com/rpacloud/rpacloud/core/store/storetest"
	"github.com/rpacloud/rpacloud/ent"
	"github.com/rpacloud/rpacloud/ent/batch"
	"github.com/rpacloud/rpacloud/ent/robot"
	"github.com/rpacloud/rpacloud/ent/task"
	"github.com/rpacloud/rpacloud/plugins/sdk/sdktest"
)

// fuzzQueue is one SQLite queue shared by every input of a fuzz function:
// process "echo" in pool "p" takes the fuzzed submissions, process "rep"
// in pool "r" (robot "rr", one retry) the tasks whose reports are fuzzed.
type fuzzQueue struct {
	db    *store.DB
	q     *dispatch.Queue
	clock *sdktest.Clock
	cust  *ent.Customer
	rr    *ent.Robot
}

func newFuzzQueue(tb testing.TB) *fuzzQueue {
	tb.Helper()
	db := storetest.SQLite(tb)
	ctx := sys()
	fq := &fuzzQueue{db: db, clock: sdktest.NewClock(time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC))}
	fq.q = dispatch.New(db.Client, dispatch.Options{Bus: events.New(), Now: fq.clock.Now, Seed: 42})
	fq.cust = db.Customer.Create().SetName("acme").SaveX(ctx)
	p := db.Pool.Create().SetName("p").SetProvider("local").SetMax(10).SaveX(ctx)
	db.Process.Create().SetName("echo").SetPoolID(p.ID).SetRunner("echo").SetMaxDurationSeconds(60).SaveX(ctx)
	r := db.Pool.Create().SetName("r").SetProvider("local").SetMax(10).SaveX(ctx)
	db.Process.Create().SetName("rep").SetPoolID(r.ID).SetRunner("echo").SetMaxDurationSeconds(60).SetRetries(1).SaveX(ctx)
	fq.rr = db.Robot.Create().SetName("rr").SetPoolID(r.ID).SaveX(ctx)
	return fq
}

// storable reports whether PostgreSQL can keep s in a text column: valid
// UTF-8 without NUL bytes. SQLite keeps anything, so the fuzz target
// checks this itself for what the queue accepts.
func storable(s string) bool { return utf8.ValidString(s) && !strings.Contains(s, "\x00") }

// checkBatch insists a batch's counters equal its tasks counted by state.
func checkBatch(t *testing.T, db *store.DB, id int) {
	t.Helper()
	ctx := sys()
	b := db.Batch.GetX(ctx, id)
	count := func(s task.State) int {
		return db.Task.Query().Where(task.BatchID(id), task.StateEQ(s)).CountX(ctx)
	}
	pending, running, succeeded, failed := count(task.StatePending), count(task.StateRunning), count(task.StateSucceeded), count(task.StateFailed)
	if b.Pending != pending || b.Running != running || b.Succeeded != succeeded || b.Failed != failed ||
		b.Total != pending+running+succeeded+failed {
		t.Fatalf("batch %d counters total=%d pending=%d running=%d succeeded=%d failed=%d; its tasks: pending=%d running=%d succeeded=%d failed=%d",
			id, b.Total, b.Pending, b.Running, b.Succeeded, b.Failed, pending, running, succeeded, failed)
	}
}

// splitInputs turns the fuzzed bytes into task inputs, one per line.
// Empty bytes are an empty submission.
func splitInputs(b []byte) []json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	lines := bytes.Split(b, []byte("\n"))
	out := make([]json.RawMessage, len(lines))
	for i, l := range lines {
		out[i] = json.RawMessage(l)
	}
	return out
}

// FuzzSubmitAndReport submits fuzzed task inputs (one per line) and then
// reports a fuzzed result for a task it claims. Submit either writes the
// whole batch with the inputs as given, or refuses with ErrBadInput and
// writes nothing. Report moves the task to succeeded, failed or pending;
// a result it cannot record is refused with ErrResultRefused and the
// attempt fails at once as an execution error with the reason. Either way
// the batch's counters match its tasks. What is accepted must be storable
// in PostgreSQL too.
func FuzzSubmitAndReport(f *testing.F) {
	type seed struct {
		inputs  string
		success bool
		output  string
		class   string
		message string
	}
	for _, s := range []seed{
		{`{"n":1}`, true, `{"ok":true}`, "", ""},
		{"{\"n\":1}\n{\"n\":2}\n{\"n\":3}", false, "", "EXECUTION", "portal down"},
		{`{"tax_id":"91310000MA1FL0000X","period":"2026-10"}`, false, "", "DATA", "tax id does not exist"},
		{``, true, ``, "", ""},
		{`[]`, true, `null`, "", ""},
		{`null`, true, `[1,2`, "", ""},
		{`"str"`, false, "", "other", "x"},
		{`{"credentials":{"password":"x"}}`, false, "", "", ""},
		{`{"a":1}` + "\n" + `{"credentials":null}`, true, `{}`, "", ""},
		{`{"a":"\u0000"}`, true, `{"a":"\u0000"}`, "", ""},
		{"{\"a\":\"\xff\xfe\"}", true, "{\"b\":\"\xff\"}", "", ""},
		{`{"a":1}`, false, "", "EXECUTION", "nul \x00 byte"},
		{`{"a":1}`, false, "", "DATA", "bad utf-8 \xc3\x28"},
		{`{"a":1} {"b":2}`, true, `{} {}`, "", ""},
		{`{"a":1,"a":2}`, true, `1e999`, "", ""},
		{`{"deep":` + strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000) + `}`, true, strings.Repeat(`[`, 5000) + strings.Repeat(`]`, 5000), "", ""},
		{strings.Repeat("{\"n\":1}\n", 300) + `{"n":2}`, false, "", "execution", strings.Repeat("e", 4096)},
	} {
		f.Add([]byte(s.inputs), s.success, []byte(s.output), s.class, s.message)
	}
	fq := newFuzzQueue(f)
	f.Fuzz(func(t *testing.T, rawInputs []byte, success bool, output []byte, class, message string) {
		ctx := context.Background()
		fq.clock.Add(time.Second)

		// Submit.
		in := splitInputs(rawInputs)
		if len(in) > 1000 {
			t.Skip("more lines than make the point")
		}
		batchesBefore := fq.db.Batch.Query().CountX(sys())
		tasksBefore := fq.db.Task.Query().CountX(sys())
		b, err := fq.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: fq.cust.ID, Process: "echo", Label: "fuzz", Inputs: in, SubmittedBy: "fuzz"})
		if err != nil {
			if !errors.Is(err, dispatch.ErrBadInput) {
				t.Fatalf("Submit refused with an error that is not ErrBadInput: %v", err)
			}
			if n := fq.db.Batch.Query().CountX(sys()); n != batchesBefore {
				t.Fatalf("refused Submit (%v) left %d batches, had %d", err, n, batchesBefore)
			}
			if n := fq.db.Task.Query().CountX(sys()); n != tasksBefore {
				t.Fatalf("refused Submit (%v) left %d tasks, had %d", err, n, tasksBefore)
			}
		} else {
			if b.Total != len(in) || b.Pending != len(in) {
				t.Fatalf("batch of %d inputs has total %d, pending %d", len(in), b.Total, b.Pending)
			}
			tasks := fq.db.Task.Query().Where(task.BatchID(b.ID)).Order(ent.Asc(task.FieldSeq)).AllX(sys())
			if len(tasks) != len(in) {
				t.Fatalf("batch of %d inputs has %d tasks", len(in), len(tasks))
			}
			for i, tk := range tasks {
				if tk.Seq != i || tk.Input != string(in[i]) {
					t.Fatalf("task %d: seq %d input %q, want %q", i, tk.Seq, tk.Input, in[i])
				}
				var obj map[string]any
				if json.Unmarshal([]byte(tk.Input), &obj) != nil || obj == nil {
					t.Fatalf("accepted input %d is not a JSON object: %q", i, tk.Input)
				}
				if !storable(tk.Input) {
					t.Fatalf("accepted input %d cannot be stored in PostgreSQL (invalid UTF-8 or NUL): %q", i, tk.Input)
				}
			}
			checkBatch(t, fq.db, b.ID)
		}

		// Report on a task of process "rep".
		if _, err := fq.q.Submit(ctx, dispatch.SubmitRequest{CustomerID: fq.cust.ID, Process: "rep", Inputs: []json.RawMessage{json.RawMessage(`{"n":1}`)}}); err != nil {
			t.Fatal(err)
		}
		c, err := fq.q.ClaimTask(ctx, fq.rr.ID)
		if err != nil || c == nil {
			t.Fatalf("claim: %v %v", c, err)
		}
		res := dispatch.Result{Success: success, Output: json.RawMessage(output), Class: robotwire.ErrorClass(class), Message: message}
		got, err := fq.q.Report(ctx, fq.rr.ID, c.Task.ID, c.Task.AttemptNo, res)
		stored := fq.db.Task.GetX(sys(), c.Task.ID)
		if err != nil {
			if !errors.Is(err, dispatch.ErrResultRefused) {
				t.Fatalf("Report refused with an error that is not ErrResultRefused: %v", err)
			}
			// The refused result ended the attempt as an execution error.
			if stored.State == task.StateRunning || stored.State == task.StateSucceeded ||
				!strings.HasPrefix(stored.ErrorMessage, "result refused: ") || !storable(stored.ErrorMessage) {
				t.Fatalf("refused Report (%v) left the task %s with message %q", err, stored.State, stored.ErrorMessage)
			}
		} else {
			if got.State != stored.State {
				t.Fatalf("Report returned state %s, stored %s", got.State, stored.State)
			}
			switch stored.State {
			case task.StateSucceeded:
				if !success || !json.Valid([]byte(stored.Output)) {
					t.Fatalf("task succeeded on %+v with output %q", res, stored.Output)
				}
				if !storable(stored.Output) {
					t.Fatalf("accepted output cannot be stored in PostgreSQL (invalid UTF-8 or NUL): %q", stored.Output)
				}
			case task.StateFailed, task.StatePending:
				if success {
					t.Fatalf("a successful report left the task %s", stored.State)
				}
				if !storable(stored.ErrorMessage) {
					t.Fatalf("accepted error message cannot be stored in PostgreSQL (invalid UTF-8 or NUL): %q", stored.ErrorMessage)
				}
				// The message is kept, with what PostgreSQL cannot store
				// replaced by U+FFFD.
				if storable(message) && stored.ErrorMessage != message {
					t.Fatalf("error message stored %q, reported %q", stored.ErrorMessage, message)
				}
				if want := strings.ReplaceAll(strings.ToValidUTF8(message, "\uFFFD"), "\x00", "\uFFFD"); stored.ErrorMessage != want {
					t.Fatalf("error message stored %q, want %q", stored.ErrorMessage, want)
				}
			default:
				t.Fatalf("after Report the task is %s", stored.State)
			}
		}
		checkBatch(t, fq.db, stored.BatchID)
		if st := fq.db.Robot.Query().Where(robot.ID(fq.rr.ID)).OnlyX(sys()).State; st != robot.StateIdle {
			t.Fatalf("after the report the robot is %s", st)
		}
		// Batches never count more than they hold.
		for _, bb := range fq.db.Batch.Query().Where(batch.Or(batch.PendingLT(0), batch.RunningLT(0))).AllX(sys()) {
			t.Fatalf("batch %d has negative counters: %+v", bb.ID, bb)
		}
	})
}
