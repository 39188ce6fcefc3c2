package documents

// Doc is a document independent of its format: renderers turn the same
// Doc into a workbook, Markdown, HTML or PDF, so every format says the
// same thing.
type Doc struct {
	Kind      Kind
	Language  Language
	Title     string
	Subtitle  string
	Landscape bool // wide tables: print landscape
	Sections  []Section
	// Footer is printed at the bottom of every PDF page.
	Footer string
}

// Section is a headed part of a document. In a workbook a Section with a
// Sheet name starts a new worksheet; the others follow on the current one.
type Section struct {
	Sheet    string
	Heading  string
	Text     []string
	Fields   []Field
	Table    *Table
	Bullets  []string
	Steps    []string // numbered
	Code     string   // preformatted, e.g. a connection command
	SignHere []string // labels of signature lines
}

// Field is a label and its value.
type Field struct {
	Label, Value string
}

// Table is a grid with a header row. Marks, when set, has one entry per
// row and flags rows (or cells, see CellMarks) for highlighting: "bad"
// (a clash, a failure), "good", "warn".
type Table struct {
	Head      []string
	Rows      [][]string
	Marks     []string
	CellMarks [][]string // optional, same shape as Rows
	// Widths are relative column widths (workbook characters); optional.
	Widths []float64
}

func (t *Table) mark(row int) string {
	if row < len(t.Marks) {
		return t.Marks[row]
	}
	return ""
}

func (t *Table) cellMark(row, col int) string {
	if row < len(t.CellMarks) && col < len(t.CellMarks[row]) && t.CellMarks[row][col] != "" {
		return t.CellMarks[row][col]
	}
	return t.mark(row)
}
