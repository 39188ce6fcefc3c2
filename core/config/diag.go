package config

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints one line per problem,
//
//	file:line:col: severity: summary; detail
//
// which editors and CI annotators parse, followed by the source line with
// the subject underlined.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) error {
	var b strings.Builder
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		loc := "rpacloud"
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(&b, "%s: %s: %s", loc, sev, oneLine(d.Summary))
		if d.Detail != "" {
			b.WriteString("; " + oneLine(d.Detail))
		}
		b.WriteByte('\n')
		if d.Subject != nil {
			if f := files[d.Subject.Filename]; f != nil {
				_, secret := d.Extra.(SecretSubject)
				writeSnippet(&b, f.Bytes, *d.Subject, secret)
			}
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// writeSnippet prints the subject's first line and marks the subject under
// it; a subject spanning lines is marked to the end of its first line.
// A secret subject is printed as *** so the line locates the problem
// without repeating the secret.
func writeSnippet(b *strings.Builder, src []byte, rng hcl.Range, secret bool) {
	start := rng.Start.Byte
	if start < 0 || start > len(src) || rng.Start.Line < 1 {
		return
	}
	lineStart := bytes.LastIndexByte(src[:start], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[start:], '\n'); i >= 0 {
		lineEnd = start + i
	}
	line := strings.TrimRight(string(src[lineStart:lineEnd]), "\r")
	end := min(max(rng.End.Byte, start), lineEnd)
	if end > lineStart+len(line) {
		end = lineStart + len(line)
	}
	prefix := string(src[lineStart:start])
	marked := string(src[start:end])
	if secret {
		line = prefix + "***"
		marked = "***"
	}
	fmt.Fprintf(b, "%6d | %s\n", rng.Start.Line, line)
	fmt.Fprintf(b, "%6s | %s%s\n", "", blank(prefix), strings.Repeat("^", max(width(marked), 1)))
}

// blank keeps tabs so the marker lines up under tab-indented source.
func blank(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\t' {
			b.WriteByte('\t')
			continue
		}
		b.WriteString(strings.Repeat(" ", runeWidth(r)))
	}
	return b.String()
}

func width(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// runeWidth counts East Asian wide characters as two columns: display
// names in Chinese are common in this domain and would shift the marker.
func runeWidth(r rune) int {
	switch {
	case r == utf8.RuneError:
		return 1
	case r >= 0x1100 && r <= 0x115F, r >= 0x2E80 && r <= 0xA4CF, r >= 0xAC00 && r <= 0xD7A3,
		r >= 0xF900 && r <= 0xFAFF, r >= 0xFE30 && r <= 0xFE4F, r >= 0xFF00 && r <= 0xFF60,
		r >= 0xFFE0 && r <= 0xFFE6, r >= 0x20000 && r <= 0x3FFFD:
		return 2
	}
	return 1
}
