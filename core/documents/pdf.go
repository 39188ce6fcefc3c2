package documents

import (
	"context"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ErrNoChromium means no Chromium binary was found for PDF output.
var ErrNoChromium = errors.New("no Chromium for PDF output: install chromium or set RPACLOUD_CHROMIUM to its path")

// FindChromium returns $RPACLOUD_CHROMIUM, or the first Chromium or Chrome
// on PATH.
func FindChromium() (string, error) {
	if p := os.Getenv("RPACLOUD_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("RPACLOUD_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// Printer turns HTML into PDF with headless Chromium through the DevTools
// protocol. Each call starts its own browser: documents are rare, and a
// browser that crashed on one document cannot spoil the next.
type Printer struct {
	Chromium string        // path; "" = FindChromium
	Timeout  time.Duration // per document; default 60s
}

// PDFBytes prints the document.
func (p Printer) PDFBytes(ctx context.Context, doc *Doc) ([]byte, error) {
	return p.Print(ctx, HTMLText(doc), doc.Landscape, doc.Footer)
}

// Print renders a self-contained HTML page to A4 PDF, with the footer text
// and page numbers at the bottom of every page.
func (p Printer) Print(ctx context.Context, htmlPage string, landscape bool, footer string) ([]byte, error) {
	path := p.Chromium
	if path == "" {
		var err error
		if path, err = FindChromium(); err != nil {
			return nil, err
		}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	footerHTML := fmt.Sprintf(`<div style="width:100%%;font-size:7pt;color:#7f7f7f;padding:0 12mm;display:flex;justify-content:space-between;font-family:'Noto Sans CJK SC','Noto Sans',sans-serif"><span>%s</span><span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>`, html.EscapeString(footer))
	var out []byte
	err := chromedp.Run(bctx,
		chromedp.Navigate("about:blank"),
		chromedp.ActionFunc(func(ctx context.Context) error {
			tree, err := page.GetFrameTree().Do(ctx)
			if err != nil {
				return fmt.Errorf("frame tree: %w", err)
			}
			return page.SetDocumentContent(tree.Frame.ID, htmlPage).Do(ctx)
		}),
		// Fonts load asynchronously; printing before they are ready
		// would lay Chinese text out in a fallback font.
		chromedp.Evaluate(`document.fonts.ready.then(() => true)`, nil, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}),
		chromedp.ActionFunc(func(ctx context.Context) error {
			buf, _, err := page.PrintToPDF().
				WithPrintBackground(true).
				WithLandscape(landscape).
				WithPreferCSSPageSize(true).
				WithDisplayHeaderFooter(true).
				WithHeaderTemplate("<span></span>").
				WithFooterTemplate(footerHTML).
				Do(ctx)
			out = buf
			return err
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("print PDF with %s: %w", path, err)
	}
	return out, nil
}
