package documents

import (
	"context"
	"fmt"
)

// Render builds one document and renders it in a format. The manual is
// prose, not a sheet: it has no workbook form.
func Render(ctx context.Context, k Kind, f Format, d Data, lang Language, p Printer) ([]byte, error) {
	if k == Manual && f == XLSX {
		return nil, fmt.Errorf("documents: the manual is prose, not a sheet; render it as md, html or pdf")
	}
	doc, err := Build(k, d, lang)
	if err != nil {
		return nil, err
	}
	switch f {
	case XLSX:
		return XLSXBytes(doc)
	case Markdown:
		return []byte(MarkdownText(doc)), nil
	case HTML:
		return []byte(HTMLText(doc)), nil
	case PDF:
		return p.PDFBytes(ctx, doc)
	}
	return nil, fmt.Errorf("documents: unknown format %q", f)
}

// FileName is the conventional name of a rendered document, e.g.
// "vat-filing-record.zh.xlsx".
func FileName(process string, k Kind, f Format, lang Language) string {
	return fmt.Sprintf("%s-%s.%s.%s", process, k, lang, f)
}
