package documents

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openXLSX(t *testing.T, k Kind, lang Language) *excelize.File {
	t.Helper()
	b, err := Render(context.Background(), k, XLSX, fixture(), lang, Printer{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func cells(t *testing.T, f *excelize.File, sheet string, want map[string]string) {
	t.Helper()
	for cell, v := range want {
		got, err := f.GetCellValue(sheet, cell)
		if err != nil {
			t.Fatalf("%s!%s: %v", sheet, cell, err)
		}
		if got != v {
			t.Errorf("%s!%s = %q, want %q", sheet, cell, got, v)
		}
	}
}

func TestRecordSheetXLSX(t *testing.T) {
	f := openXLSX(t, Record, English)
	if got := f.GetSheetList(); len(got) != 1 || got[0] != "Record" {
		t.Fatalf("sheets %v", got)
	}
	cells(t, f, "Record", map[string]string{
		"A1": "Process information record sheet", "A2": "vat-filing",
		"A4": "Process", "A5": "Process", "B5": "vat-filing",
		"A6": "Owning department", "B6": "ACME Finance",
		"A8": "Runs as", "B8": "UiPath robot (vendor connection uipath-prod)",
		"A11": "Current lifecycle stage", "B11": "S5 business trial run",
		"A13": "Robots in the pool", "B13": "2 permanent, up to 2",
		"A14": "Time limit per attempt", "B14": "20 min",
		"A16": "Credentials (names only)", "B16": "etax/acme",
		"A18": "VM preparation (S2)", "A19": "Software", "B19": "UiPath Robot",
		"A21": "Network profile", "B21": "tax-bureau",
		"A27": "VMs and remote access", "A28": "VM", "C28": "Protocol",
		"A29": "tax-rpa-1", "B29": "running", "C29": "RDP", "D29": "10.20.3.11", "E29": "3389", "F29": "rpa",
		"A31": "Booked time slots", "A32": "Slot", "B32": "When",
		"A33": "morning", "B33": "Monday to Friday 09:00–10:30", "C33": "1 h 30 min", "D33": "Asia/Shanghai", "E33": "tax-rpa", "F33": "any (1)",
		"A35": "Runs on the platform", "A37": "Tasks", "B37": "25", "A39": "Failed", "B39": "1",
	})
	// The booking clashes: its row is filled red.
	style, err := f.GetCellStyle("Record", "A33")
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.GetStyle(style)
	if err != nil || len(st.Fill.Color) == 0 || st.Fill.Color[0] != "F8CBAD" {
		t.Fatalf("clash row style %+v %v", st, err)
	}
}

func TestRecordSheetXLSXChinese(t *testing.T) {
	f := openXLSX(t, Record, Chinese)
	cells(t, f, "记录表", map[string]string{
		"A1": "流程信息记录表", "A5": "流程名称", "B5": "vat-filing", "A6": "所属部门",
		"B11": "S5 业务试运行", "B13": "常驻 2 台，最多 2 台", "B14": "20 分钟",
		"A16": "所需凭证（仅名称）", "A21": "内网访问设置",
		"B33": "周一至周五 09:00–10:30", "C33": "1 小时 30 分钟", "F33": "任意（1 台）",
	})
}

func TestAcceptanceXLSX(t *testing.T) {
	f := openXLSX(t, Acceptance, English)
	cells(t, f, "Acceptance", map[string]string{
		"A1":  "Process acceptance sheet",
		"A12": "Result", "B12": "not accepted yet",
		"A14": "Lifecycle S1–S5 with evidence",
		"A15": "#", "B15": "Step", "C15": "Outcome", "D15": "Now at", "E15": "By", "F15": "When", "G15": "Evidence",
		"A16": "1", "B16": "S1", "C16": "VM acquired", "D16": "S2 preparing the VM", "E16": "li.wei", "F16": "2026-11-02 17:00 CST",
		"C17": "VM prepared", "G17": "endpoints: rdp://10.20.3.11:3389; checklist 2/2",
		"C19": "test failed", "G19": "fault (network): proxy blocked the portal",
		"C21": "test passed", "G21": "batch 12: 5/5 succeeded",
		"A23": "Checklist", "A24": "Gate", "B24": "Checklist item",
		"A25": "VM prepared", "B25": "intranet access (network profile) applied", "C25": "✓", "D25": "li.wei",
		"B26": "software installed: UiPath Robot",
		"A27": "developed / migrated", "B27": "process package deployed on the VM",
		"A28": "trial passed, accepted", "B28": "credential onboarded into Vault: etax/acme", "C28": "✗", "D28": "—",
	})
}

func TestScheduleXLSX(t *testing.T) {
	f := openXLSX(t, Schedule, English)
	want := []string{"By department", "Pool tax-rpa", "Clashes", "Saturation"}
	if got := f.GetSheetList(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sheets %v", got)
	}
	cells(t, f, "By department", map[string]string{
		"A1": "Run schedule", "A2": "vat-filing · pool tax-rpa · 2026-11-02 to 2026-11-08",
		"A6": "Department", "B6": "Process", "C6": "Slot", "D6": "When",
		"A7": "ACME Finance", "B7": "vat-filing", "C7": "morning", "D7": "Monday to Friday 09:00–10:30",
		"A8": "ACME HR", "B8": "payroll-tax", "H8": "any (2)",
	})
	// Monday 10:00 Shanghai: vat-filing (1) and payroll-tax (2) on a pool
	// of 2; 11:00 payroll alone.
	cells(t, f, "Pool tax-rpa", map[string]string{
		"A5": "Hour", "B5": "Mon", "H5": "Sun",
		"A14": "08:00", "B14": "",
		"A15": "09:00", "B15": "1/2 vat-filing",
		"A16": "10:00", "B16": "3/2 payroll-tax, vat-filing", "G16": "",
		"A17": "11:00", "B17": "2/2 payroll-tax",
	})
	cells(t, f, "Clashes", map[string]string{
		"A5": "Clash", "G5": "Needed / max",
		"A6": "more than the pool's max", "B6": "tax-rpa", "C6": "—", "D6": "payroll-tax/window, vat-filing/morning", "E6": "5", "F6": "2026-11-02 10:00 CST", "G6": "3 / 2",
	})
	cells(t, f, "Saturation", map[string]string{
		"A6": "Pool", "B6": "Robot", "C6": "Booked", "D6": "Measured",
		"B7": "tax-rpa-1", "C7": "85%", "D7": "62%", "E7": "saturated: add a robot or move a slot",
		"B8": "tax-rpa-2", "C8": "2%", "E8": "idle: its licence can go",
	})
}

func TestManualHasNoWorkbook(t *testing.T) {
	if _, err := Render(context.Background(), Manual, XLSX, fixture(), English, Printer{}); err == nil || !strings.Contains(err.Error(), "no workbook form") && !strings.Contains(err.Error(), "not a sheet") {
		t.Fatal(err)
	}
}

func TestMarkdownManual(t *testing.T) {
	for lang, want := range map[Language][]string{
		English: {"# User manual", "## 2. How to connect", "| tax-rpa-1 | RDP | 10.20.3.11 | 3389 |", "mstsc /v:10.20.3.11:3389", "- etax/acme", "up to 3 more times", "RPA desk, ext. 8080"},
		Chinese: {"# 用户操作手册", "## 2. 如何远程连接", "- etax/acme", "最多再试 3 次", "内网访问设置 tax-bureau"},
	} {
		b, err := Render(context.Background(), Manual, Markdown, fixture(), lang, Printer{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s manual lacks %q", lang, w)
			}
		}
	}
}

func TestParse(t *testing.T) {
	if _, err := ParseKind("invoice"); err == nil {
		t.Fatal("kind")
	}
	if _, err := ParseFormat("docx"); err == nil {
		t.Fatal("format")
	}
	if l, err := ParseLanguage("zh-CN"); err != nil || l != Chinese {
		t.Fatal("lang")
	}
	if _, err := ParseLanguage("fr"); err == nil {
		t.Fatal("lang fr")
	}
	if FileName("p", Record, XLSX, Chinese) != "p-record.zh.xlsx" {
		t.Fatal("name")
	}
}

// chromium returns the browser, skipping or (RPACLOUD_REQUIRE_CHROMIUM=1)
// failing when there is none; poppler's tools are required alike.
func chromium(t *testing.T) string {
	t.Helper()
	p, err := FindChromium()
	if err != nil {
		if os.Getenv("RPACLOUD_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("RPACLOUD_REQUIRE_CHROMIUM=1: %v", err)
		}
		t.Skip(err)
	}
	for _, tool := range []string{"pdftotext", "pdftoppm", "pdfinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("RPACLOUD_REQUIRE_CHROMIUM") == "1" {
				t.Fatalf("%s (poppler-utils) missing: %v", tool, err)
			}
			t.Skip(err)
		}
	}
	return p
}

func pdfPages(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("pdfinfo", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pdfinfo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("pdfinfo: no page count in %s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestPDF prints every document in both languages with real Chromium and
// checks what poppler reads back: page count, key text, PNG pages.
func TestPDF(t *testing.T) {
	p := Printer{Chromium: chromium(t)}
	dir := t.TempDir()
	if keep := os.Getenv("RPACLOUD_DOCS_KEEP"); keep != "" {
		dir = keep // to look at the pages
	}
	cases := []struct {
		kind           Kind
		lang           Language
		pages          [2]int // min, max
		want           []string
		landscapeWider bool
	}{
		{Manual, English, [2]int{2, 3}, []string{"User manual", "How to connect", "mstsc /v:10.20.3.11:3389", "etax/acme", "When it fails"}, false},
		{Manual, Chinese, [2]int{2, 3}, []string{"用户操作手册", "如何远程连接", "需要您维护的账号密码", "etax/acme"}, false},
		{Acceptance, Chinese, [2]int{2, 3}, []string{"流程验收表", "试运行", "签字确认", "部门负责人"}, true},
		{Schedule, English, [2]int{2, 4}, []string{"Run schedule", "Booked slots by department", "3/2 payroll-tax", "saturated", "its licence can go"}, true},
		{Record, Chinese, [2]int{1, 2}, []string{"流程信息记录表", "虚拟机与远程连接", "10.20.3.11"}, false},
	}
	for _, c := range cases {
		t.Run(string(c.kind)+"-"+string(c.lang), func(t *testing.T) {
			b, err := Render(context.Background(), c.kind, PDF, fixture(), c.lang, p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b, []byte("%PDF-")) {
				t.Fatalf("not a PDF: %q", b[:min(len(b), 16)])
			}
			path := filepath.Join(dir, FileName("vat-filing", c.kind, PDF, c.lang))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			n := pdfPages(t, path)
			if n < c.pages[0] || n > c.pages[1] {
				t.Errorf("%d pages, want %d to %d", n, c.pages[0], c.pages[1])
			}
			text, err := exec.Command("pdftotext", "-layout", path, "-").Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(string(text), w) {
					t.Errorf("PDF text lacks %q", w)
				}
			}
			prefix := filepath.Join(dir, string(c.kind)+string(c.lang))
			if out, err := exec.Command("pdftoppm", "-png", "-r", "40", path, prefix).CombinedOutput(); err != nil {
				t.Fatalf("pdftoppm: %v %s", err, out)
			}
			pngs, _ := filepath.Glob(prefix + "-*.png")
			if len(pngs) != n {
				t.Errorf("%d PNG pages for %d PDF pages", len(pngs), n)
			}
		})
	}
}

func TestPrinterErrors(t *testing.T) {
	_, err := Printer{Chromium: "/nonexistent/chromium"}.Print(context.Background(), "<p>x</p>", false, "")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/chromium") {
		t.Fatalf("want an error naming the browser, got %v", err)
	}
	t.Setenv("RPACLOUD_CHROMIUM", "/nonexistent/chromium")
	if _, err := FindChromium(); err == nil || !strings.Contains(err.Error(), "RPACLOUD_CHROMIUM") {
		t.Fatal(err)
	}
	if errors.Is(err, ErrNoChromium) {
		t.Fatal("a wrong RPACLOUD_CHROMIUM is not 'no chromium'")
	}
}
