package documents

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// Workbook layout: column A holds labels and the first table column; a
// title block sits on rows 1-2 of every sheet.
const firstSheet = "Sheet1"

type xlsxStyles struct {
	title, subtitle, heading, label, value, head, cell, text int
	marks                                                    map[string]int
}

// XLSXBytes renders the document as an Excel workbook.
func XLSXBytes(doc *Doc) ([]byte, error) {
	f := excelize.NewFile()
	defer f.Close()
	st, err := newStyles(f)
	if err != nil {
		return nil, fmt.Errorf("xlsx styles: %w", err)
	}
	if err := f.SetDocProps(&excelize.DocProperties{Title: doc.Title + " " + doc.Subtitle, Creator: "rpacloud", Language: string(doc.Language)}); err != nil {
		return nil, fmt.Errorf("xlsx properties: %w", err)
	}
	w := &sheetWriter{f: f, st: st, doc: doc}
	for i, s := range doc.Sections {
		if i == 0 || s.Sheet != "" {
			name := s.Sheet
			if name == "" {
				name = doc.Title
			}
			if err := w.newSheet(name, i == 0); err != nil {
				return nil, err
			}
		}
		if err := w.section(s); err != nil {
			return nil, err
		}
	}
	if err := w.finish(); err != nil {
		return nil, err
	}
	f.SetActiveSheet(0)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return nil, fmt.Errorf("xlsx write: %w", err)
	}
	return buf.Bytes(), nil
}

func newStyles(f *excelize.File) (xlsxStyles, error) {
	var s xlsxStyles
	border := []excelize.Border{
		{Type: "left", Color: "A6A6A6", Style: 1}, {Type: "right", Color: "A6A6A6", Style: 1},
		{Type: "top", Color: "A6A6A6", Style: 1}, {Type: "bottom", Color: "A6A6A6", Style: 1},
	}
	wrap := &excelize.Alignment{WrapText: true, Vertical: "top"}
	defs := []struct {
		dst *int
		st  *excelize.Style
	}{
		{&s.title, &excelize.Style{Font: &excelize.Font{Bold: true, Size: 16, Color: "1F3864"}}},
		{&s.subtitle, &excelize.Style{Font: &excelize.Font{Size: 11, Color: "595959"}}},
		{&s.heading, &excelize.Style{Font: &excelize.Font{Bold: true, Size: 12, Color: "1F3864"}}},
		{&s.label, &excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}}, Border: border, Alignment: wrap}},
		{&s.value, &excelize.Style{Border: border, Alignment: wrap}},
		{&s.head, &excelize.Style{Font: &excelize.Font{Bold: true, Color: "FFFFFF"}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"2F5597"}}, Border: border, Alignment: &excelize.Alignment{WrapText: true, Vertical: "center"}}},
		{&s.cell, &excelize.Style{Border: border, Alignment: wrap}},
		{&s.text, &excelize.Style{Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}}},
	}
	for _, d := range defs {
		id, err := f.NewStyle(d.st)
		if err != nil {
			return s, err
		}
		*d.dst = id
	}
	s.marks = map[string]int{}
	for mark, color := range map[string]string{"bad": "F8CBAD", "good": "E2EFDA", "warn": "FFF2CC", "booked": "DDEBF7"} {
		id, err := f.NewStyle(&excelize.Style{Border: border, Alignment: wrap, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{color}}})
		if err != nil {
			return s, err
		}
		s.marks[mark] = id
	}
	return s, nil
}

type sheetWriter struct {
	f      *excelize.File
	st     xlsxStyles
	doc    *Doc
	sheet  string
	row    int
	widths map[int]float64 // column → characters
	cols   int
	used   map[string]bool
}

// sheetName makes a worksheet name Excel accepts: at most 31 characters,
// none of []:*?/\, unique in the workbook.
func (w *sheetWriter) sheetName(name string) string {
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '-'
		}
		return r
	}, name)
	for utf8.RuneCountInString(name) > 31 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	base := name
	for i := 2; w.used[name]; i++ {
		suffix := fmt.Sprintf(" %d", i)
		name = base
		for utf8.RuneCountInString(name)+len(suffix) > 31 {
			_, size := utf8.DecodeLastRuneInString(name)
			name = name[:len(name)-size]
		}
		name += suffix
	}
	if w.used == nil {
		w.used = map[string]bool{}
	}
	w.used[name] = true
	return name
}

func (w *sheetWriter) newSheet(name string, first bool) error {
	if err := w.finish(); err != nil {
		return err
	}
	name = w.sheetName(name)
	if first {
		if err := w.f.SetSheetName(firstSheet, name); err != nil {
			return fmt.Errorf("xlsx sheet %q: %w", name, err)
		}
	} else if _, err := w.f.NewSheet(name); err != nil {
		return fmt.Errorf("xlsx sheet %q: %w", name, err)
	}
	w.sheet, w.row, w.widths, w.cols = name, 1, map[int]float64{}, 2
	if err := w.set(1, w.row, w.doc.Title, w.st.title); err != nil {
		return err
	}
	w.row++
	if w.doc.Subtitle != "" {
		if err := w.set(1, w.row, w.doc.Subtitle, w.st.subtitle); err != nil {
			return err
		}
		w.row++
	}
	w.row++
	orientation := "portrait"
	if w.doc.Landscape {
		orientation = "landscape"
	}
	fit := true
	one, zero := 1, 0
	if err := w.f.SetPageLayout(w.sheet, &excelize.PageLayoutOptions{Orientation: &orientation, FitToWidth: &one, FitToHeight: &zero}); err != nil {
		return fmt.Errorf("xlsx page layout: %w", err)
	}
	return w.f.SetSheetProps(w.sheet, &excelize.SheetPropsOptions{FitToPage: &fit})
}

func (w *sheetWriter) set(col, row int, v any, style int) error {
	cell, err := excelize.CoordinatesToCellName(col, row)
	if err != nil {
		return err
	}
	if err := w.f.SetCellValue(w.sheet, cell, v); err != nil {
		return fmt.Errorf("xlsx %s!%s: %w", w.sheet, cell, err)
	}
	if style != 0 {
		if err := w.f.SetCellStyle(w.sheet, cell, cell, style); err != nil {
			return fmt.Errorf("xlsx style %s!%s: %w", w.sheet, cell, err)
		}
	}
	return nil
}

func (w *sheetWriter) width(col int, chars float64) {
	if chars > w.widths[col] {
		w.widths[col] = chars
	}
	if col > w.cols {
		w.cols = col
	}
}

// textWidth counts wide (CJK) characters twice, as Excel draws them.
func textWidth(s string) float64 {
	n := 0.0
	for _, r := range s {
		if r >= 0x2E80 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func (w *sheetWriter) mergeText(text string, style int) error {
	if err := w.set(1, w.row, text, style); err != nil {
		return err
	}
	last, _ := excelize.CoordinatesToCellName(max(w.cols, 6), w.row)
	first, _ := excelize.CoordinatesToCellName(1, w.row)
	if err := w.f.MergeCell(w.sheet, first, last); err != nil {
		return err
	}
	lines := textWidth(text)/90 + 1
	if err := w.f.SetRowHeight(w.sheet, w.row, 15*float64(int(lines))); err != nil {
		return err
	}
	w.row++
	return nil
}

func (w *sheetWriter) section(s Section) error {
	if s.Heading != "" {
		if err := w.set(1, w.row, s.Heading, w.st.heading); err != nil {
			return err
		}
		w.row++
	}
	for _, t := range s.Text {
		if err := w.mergeText(t, w.st.text); err != nil {
			return err
		}
	}
	for _, fl := range s.Fields {
		if err := w.set(1, w.row, fl.Label, w.st.label); err != nil {
			return err
		}
		if err := w.set(2, w.row, fl.Value, w.st.value); err != nil {
			return err
		}
		w.width(1, textWidth(fl.Label)+2)
		w.width(2, min(textWidth(fl.Value)+2, 70))
		w.row++
	}
	for i, st := range s.Steps {
		if err := w.mergeText(fmt.Sprintf("%d. %s", i+1, st), w.st.text); err != nil {
			return err
		}
	}
	if s.Code != "" {
		if err := w.set(1, w.row, s.Code, w.st.value); err != nil {
			return err
		}
		w.row++
	}
	if t := s.Table; t != nil {
		for c, h := range t.Head {
			if err := w.set(c+1, w.row, h, w.st.head); err != nil {
				return err
			}
			if c < len(t.Widths) {
				w.width(c+1, t.Widths[c])
			} else {
				w.width(c+1, textWidth(h)+2)
			}
		}
		headRow := w.row
		w.row++
		for r, row := range t.Rows {
			for c, v := range row {
				style := w.st.cell
				if m := t.cellMark(r, c); m != "" {
					style = w.st.marks[m]
				}
				if err := w.set(c+1, w.row, v, style); err != nil {
					return err
				}
			}
			w.row++
		}
		if s.Sheet != "" && headRow < 12 {
			// The table opens its own sheet: keep the header in view.
			cell, _ := excelize.CoordinatesToCellName(1, headRow+1)
			if err := w.f.SetPanes(w.sheet, &excelize.Panes{Freeze: true, YSplit: headRow, TopLeftCell: cell, ActivePane: "bottomLeft"}); err != nil {
				return err
			}
		}
	}
	for _, bl := range s.Bullets {
		if err := w.mergeText("• "+bl, w.st.text); err != nil {
			return err
		}
	}
	for _, sign := range s.SignHere {
		if err := w.set(1, w.row, sign, w.st.label); err != nil {
			return err
		}
		if err := w.set(2, w.row, "", w.st.value); err != nil {
			return err
		}
		if err := w.f.SetRowHeight(w.sheet, w.row, 30); err != nil {
			return err
		}
		w.row++
	}
	w.row++
	return nil
}

// finish sets the column widths of the sheet being written.
func (w *sheetWriter) finish() error {
	if w.sheet == "" {
		return nil
	}
	for col, chars := range w.widths {
		name, err := excelize.ColumnNumberToName(col)
		if err != nil {
			return err
		}
		if err := w.f.SetColWidth(w.sheet, name, name, chars); err != nil {
			return fmt.Errorf("xlsx column width: %w", err)
		}
	}
	return nil
}
