package sim

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Batch is one row of a trace: a customer submits Tasks tasks at SubmitAt
// seconds after the start of the trace.
type Batch struct {
	SubmitAt      float64
	Customer      string
	Tasks         int
	TaskDuration  float64 // seconds one attempt takes
	FailRate      float64 // chance an attempt ends in an execution error (retried)
	DataErrorRate float64 // chance an attempt ends in a data error (final at once)
	HangRate      float64 // chance an attempt hangs until its deadline
}

// Trace is a workload, sorted by submission time.
type Trace []Batch

// Columns of a trace CSV; the last three are optional.
var (
	requiredColumns = []string{"submit_at_s", "customer", "tasks", "task_duration_s"}
	optionalColumns = []string{"fail_rate", "data_error_rate", "hang_rate"}
)

// ReadTrace reads a trace CSV with a header row. Errors name the line and
// the column.
func ReadTrace(r io.Reader, name string) (Trace, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty trace: want a header row %s", name, strings.Join(requiredColumns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if !slices.Contains(requiredColumns, h) && !slices.Contains(optionalColumns, h) {
			return nil, fmt.Errorf("%s:1: unknown column %q: the columns are %s and optionally %s",
				name, h, strings.Join(requiredColumns, ","), strings.Join(optionalColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice", name, h)
		}
		col[h] = i
	}
	for _, h := range requiredColumns {
		if _, ok := col[h]; !ok {
			return nil, fmt.Errorf("%s:1: missing column %q (header must have %s)", name, h, strings.Join(requiredColumns, ","))
		}
	}
	var out Trace
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		at := func(c string) string { return fmt.Sprintf("%s:%d: %s", name, line, c) }
		num := func(c string, lo, hi float64) (float64, error) {
			i, ok := col[c]
			if !ok {
				return 0, nil
			}
			s := strings.TrimSpace(rec[i])
			if s == "" && slices.Contains(optionalColumns, c) {
				return 0, nil
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("%s = %q is not a number", at(c), s)
			}
			if v < lo || v > hi {
				return 0, fmt.Errorf("%s = %v is out of range [%v, %v]", at(c), v, lo, hi)
			}
			return v, nil
		}
		var b Batch
		if b.SubmitAt, err = num("submit_at_s", 0, math.MaxFloat64); err != nil {
			return nil, err
		}
		b.Customer = strings.TrimSpace(rec[col["customer"]])
		if b.Customer == "" {
			return nil, fmt.Errorf("%s is empty", at("customer"))
		}
		tasks, err := num("tasks", 1, 1e7)
		if err != nil {
			return nil, err
		}
		if tasks != math.Trunc(tasks) {
			return nil, fmt.Errorf("%s = %v is not a whole number", at("tasks"), tasks)
		}
		b.Tasks = int(tasks)
		if b.TaskDuration, err = num("task_duration_s", 0.001, 7*24*3600); err != nil {
			return nil, err
		}
		if b.FailRate, err = num("fail_rate", 0, 1); err != nil {
			return nil, err
		}
		if b.DataErrorRate, err = num("data_error_rate", 0, 1); err != nil {
			return nil, err
		}
		if b.HangRate, err = num("hang_rate", 0, 1); err != nil {
			return nil, err
		}
		if s := b.FailRate + b.DataErrorRate + b.HangRate; s > 1 {
			return nil, fmt.Errorf("%s:%d: fail_rate + data_error_rate + hang_rate = %v is more than 1", name, line, s)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: the trace has a header but no batches", name)
	}
	slices.SortStableFunc(out, func(a, b Batch) int {
		switch {
		case a.SubmitAt < b.SubmitAt:
			return -1
		case a.SubmitAt > b.SubmitAt:
			return 1
		}
		return 0
	})
	return out, nil
}

// Write writes t as CSV with every column.
func (t Trace) Write(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(append(slices.Clone(requiredColumns), optionalColumns...)); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for _, b := range t {
		if err := cw.Write([]string{f(b.SubmitAt), b.Customer, strconv.Itoa(b.Tasks), f(b.TaskDuration),
			f(b.FailRate), f(b.DataErrorRate), f(b.HangRate)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Work is the trace's total nominal work in seconds (one attempt per task).
func (t Trace) Work() float64 {
	var w float64
	for _, b := range t {
		w += float64(b.Tasks) * b.TaskDuration
	}
	return w
}

// Tasks is the number of tasks in the trace.
func (t Trace) Tasks() int {
	n := 0
	for _, b := range t {
		n += b.Tasks
	}
	return n
}
