package documents

import (
	"fmt"
	"html"
	"strings"
)

// MarkdownText renders the document as GitHub-flavoured Markdown.
func MarkdownText(doc *Doc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", mdEscape(doc.Title))
	if doc.Subtitle != "" {
		fmt.Fprintf(&b, "**%s**\n\n", mdEscape(doc.Subtitle))
	}
	for _, s := range doc.Sections {
		if s.Heading != "" {
			fmt.Fprintf(&b, "## %s\n\n", mdEscape(s.Heading))
		}
		for _, t := range s.Text {
			fmt.Fprintf(&b, "%s\n\n", mdEscape(t))
		}
		if len(s.Fields) > 0 {
			b.WriteString("| | |\n|---|---|\n")
			for _, f := range s.Fields {
				fmt.Fprintf(&b, "| **%s** | %s |\n", mdCell(f.Label), mdCell(f.Value))
			}
			b.WriteString("\n")
		}
		for i, st := range s.Steps {
			fmt.Fprintf(&b, "%d. %s\n", i+1, mdEscape(st))
		}
		if len(s.Steps) > 0 {
			b.WriteString("\n")
		}
		if s.Code != "" {
			fmt.Fprintf(&b, "```\n%s\n```\n\n", s.Code)
		}
		if t := s.Table; t != nil {
			cells := make([]string, len(t.Head))
			for i, h := range t.Head {
				cells[i] = mdCell(h)
			}
			fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(cells, " | "), strings.Repeat("---|", len(t.Head)))
			for r, row := range t.Rows {
				cells := make([]string, len(row))
				for i, v := range row {
					cells[i] = mdCell(v)
					if t.cellMark(r, i) == "bad" && v != "" {
						cells[i] = "**" + cells[i] + "** ⚠"
					}
				}
				fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
			}
			b.WriteString("\n")
		}
		for _, bl := range s.Bullets {
			fmt.Fprintf(&b, "- %s\n", mdEscape(bl))
		}
		if len(s.Bullets) > 0 {
			b.WriteString("\n")
		}
		for _, sign := range s.SignHere {
			fmt.Fprintf(&b, "%s: ______________________\n\n", mdEscape(sign))
		}
	}
	if doc.Footer != "" {
		fmt.Fprintf(&b, "---\n\n_%s_\n", mdEscape(doc.Footer))
	}
	return b.String()
}

var mdEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;")

func mdEscape(s string) string { return mdEscaper.Replace(s) }

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(mdEscape(s), "|", `\|`), "\n", "<br>")
}

const css = `
@page { size: A4 %s; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Micro Hei", "Noto Sans", "DejaVu Sans", sans-serif;
       font-size: 10pt; color: #1b1b1b; margin: 0; line-height: 1.45; }
header { border-bottom: 3px solid #2f5597; margin-bottom: 10pt; padding-bottom: 4pt; }
h1 { font-size: 19pt; color: #1f3864; margin: 0; }
.sub { color: #595959; font-size: 11pt; margin-top: 2pt; }
h2 { font-size: 12.5pt; color: #1f3864; margin: 14pt 0 5pt; break-after: avoid; }
table { border-collapse: collapse; width: 100%%; margin: 4pt 0 6pt; page-break-inside: auto; }
tr { break-inside: avoid; }
th { background: #2f5597; color: #fff; text-align: left; font-weight: 600; }
th, td { border: 1px solid #a6a6a6; padding: 3pt 5pt; vertical-align: top; word-break: break-word; }
table.fields th { background: #ddebf7; color: #1b1b1b; width: 30%%; }
td.bad { background: #f8cbad; } td.good { background: #e2efda; } td.warn { background: #fff2cc; } td.booked { background: #ddebf7; }
table.grid { table-layout: fixed; }
table.grid td, table.grid th { font-size: 7.5pt; padding: 1pt 3pt; }
pre { background: #f2f2f2; border: 1px solid #d9d9d9; padding: 5pt 7pt; font-size: 9.5pt; }
.sign { display: flex; flex-wrap: wrap; gap: 10pt 24pt; margin-top: 8pt; }
.sign div { width: 45%%; border-bottom: 1px solid #404040; padding-top: 26pt; font-size: 9pt; color: #404040; }
footer { margin-top: 14pt; color: #7f7f7f; font-size: 8pt; }
`

// HTMLText renders the document as one self-contained HTML page (no
// external resources, so Chromium prints it without network access).
func HTMLText(doc *Doc) string {
	e := html.EscapeString
	var b strings.Builder
	lang := "en"
	if doc.Language == Chinese {
		lang = "zh-CN"
	}
	orient := "portrait"
	if doc.Landscape {
		orient = "landscape"
	}
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html lang=%q><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head><body>\n",
		lang, e(doc.Title+" · "+doc.Subtitle), fmt.Sprintf(css, orient))
	fmt.Fprintf(&b, "<header><h1>%s</h1>", e(doc.Title))
	if doc.Subtitle != "" {
		fmt.Fprintf(&b, "<div class=\"sub\">%s</div>", e(doc.Subtitle))
	}
	b.WriteString("</header>\n")
	for _, s := range doc.Sections {
		b.WriteString("<section>")
		if s.Heading != "" {
			fmt.Fprintf(&b, "<h2>%s</h2>\n", e(s.Heading))
		}
		for _, t := range s.Text {
			fmt.Fprintf(&b, "<p>%s</p>\n", e(t))
		}
		if len(s.Fields) > 0 {
			b.WriteString("<table class=\"fields\">")
			for _, f := range s.Fields {
				fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>", e(f.Label), e(f.Value))
			}
			b.WriteString("</table>\n")
		}
		if len(s.Steps) > 0 {
			b.WriteString("<ol>")
			for _, st := range s.Steps {
				fmt.Fprintf(&b, "<li>%s</li>", e(st))
			}
			b.WriteString("</ol>\n")
		}
		if s.Code != "" {
			fmt.Fprintf(&b, "<pre>%s</pre>\n", e(s.Code))
		}
		if t := s.Table; t != nil {
			class := ""
			if len(t.CellMarks) > 0 {
				class = ` class="grid"`
			}
			fmt.Fprintf(&b, "<table%s>", class)
			if len(t.Widths) == len(t.Head) {
				total := 0.0
				for _, w := range t.Widths {
					total += w
				}
				b.WriteString("<colgroup>")
				for _, w := range t.Widths {
					fmt.Fprintf(&b, "<col style=\"width:%.1f%%\">", 100*w/total)
				}
				b.WriteString("</colgroup>")
			}
			b.WriteString("<thead><tr>")
			for _, h := range t.Head {
				fmt.Fprintf(&b, "<th>%s</th>", e(h))
			}
			b.WriteString("</tr></thead><tbody>")
			for r, row := range t.Rows {
				b.WriteString("<tr>")
				for c, v := range row {
					if m := t.cellMark(r, c); m != "" {
						fmt.Fprintf(&b, "<td class=%q>%s</td>", m, e(v))
					} else {
						fmt.Fprintf(&b, "<td>%s</td>", e(v))
					}
				}
				b.WriteString("</tr>")
			}
			b.WriteString("</tbody></table>\n")
		}
		if len(s.Bullets) > 0 {
			b.WriteString("<ul>")
			for _, bl := range s.Bullets {
				fmt.Fprintf(&b, "<li>%s</li>", e(bl))
			}
			b.WriteString("</ul>\n")
		}
		if len(s.SignHere) > 0 {
			b.WriteString("<div class=\"sign\">")
			for _, sign := range s.SignHere {
				fmt.Fprintf(&b, "<div>%s</div>", e(sign))
			}
			b.WriteString("</div>\n")
		}
		b.WriteString("</section>\n")
	}
	fmt.Fprintf(&b, "<footer>%s</footer>\n</body></html>\n", e(doc.Footer))
	return b.String()
}
