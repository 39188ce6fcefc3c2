package audit

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CSVHeader are the columns of an export, in order.
var CSVHeader = []string{"id", "at", "actor", "actor_role", "actor_customer", "scope_customer",
	"action", "target", "outcome", "error_code", "remote_addr", "request_id", "arguments"}

// CSV writes entries as CSV (RFC 4180, through encoding/csv): the header
// row first, times in RFC 3339 UTC, customers by id, empty cells for
// nothing. A cell that a spreadsheet would take for a formula (starting
// with = + - @ or a tab or carriage return) is written with a leading
// apostrophe: actors, targets and arguments carry text callers chose.
type CSV struct {
	w      *csv.Writer
	header bool
	rec    []string
}

// NewCSV returns a CSV writing to w.
func NewCSV(w io.Writer) *CSV {
	return &CSV{w: csv.NewWriter(w), rec: make([]string, len(CSVHeader))}
}

// Write writes e (after the header, the first time).
func (c *CSV) Write(e Entry) error {
	if !c.header {
		if err := c.w.Write(CSVHeader); err != nil {
			return fmt.Errorf("audit csv: header: %w", err)
		}
		c.header = true
	}
	r := c.rec
	r[0] = strconv.Itoa(e.ID)
	r[1] = e.At.UTC().Format(time.RFC3339)
	r[2], r[3] = cell(e.Actor), cell(e.ActorRole)
	r[4], r[5] = optInt(e.ActorCustomer), optInt(e.ScopeCustomer)
	r[6], r[7] = cell(e.Action), cell(e.Target)
	r[8], r[9] = e.Outcome, cell(e.Code)
	r[10], r[11], r[12] = cell(e.RemoteAddr), cell(e.RequestID), cell(e.Arguments)
	if err := c.w.Write(r); err != nil {
		return fmt.Errorf("audit csv: entry %d: %w", e.ID, err)
	}
	return nil
}

// Flush writes what is buffered; call it at the end (and may call it
// between pages). Without any entry it still writes the header.
func (c *CSV) Flush() error {
	if !c.header {
		if err := c.w.Write(CSVHeader); err != nil {
			return fmt.Errorf("audit csv: header: %w", err)
		}
		c.header = true
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("audit csv: %w", err)
	}
	return nil
}

func optInt(v *int) string {
	if v == nil {
		return ""
	}
	return strconv.Itoa(*v)
}

func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
