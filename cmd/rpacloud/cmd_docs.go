package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/rpacloud/rpacloud/core/documents"
)

func runDocs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "usage: rpacloud docs render --process P --kind record|acceptance|schedule|manual --format xlsx|pdf|md|html [--lang en|zh] -o FILE\n"
	if len(args) == 0 || args[0] != "render" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("docs render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	var process, kind, format, lang, output string
	fs.StringVar(&process, "process", "", "process name")
	fs.StringVar(&kind, "kind", "", "record, acceptance, schedule or manual")
	fs.StringVar(&format, "format", "", "xlsx, pdf, md or html")
	fs.StringVar(&lang, "lang", "", "en or zh (default: the documents block's language)")
	fs.StringVar(&output, "o", "", "output file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	k, errK := documents.ParseKind(kind)
	f, errF := documents.ParseFormat(format)
	for _, err := range []error{errK, errF} {
		if err != nil {
			fmt.Fprintf(stderr, "rpacloud docs render: %v\n%s", err, usage)
			return 2
		}
	}
	if lang != "" {
		if _, err := documents.ParseLanguage(lang); err != nil {
			fmt.Fprintf(stderr, "rpacloud docs render: %v\n", err)
			return 2
		}
	}
	if process == "" || output == "" {
		fmt.Fprint(stderr, "rpacloud docs render: --process and -o are required\n"+usage)
		return 2
	}
	c, err := cf.client()
	if err != nil {
		fmt.Fprintln(stderr, "rpacloud docs render:", err)
		return 1
	}
	vars := map[string]any{"p": process, "k": strings.ToUpper(string(k)), "f": strings.ToUpper(string(f))}
	if lang != "" {
		vars["lang"] = lang
	}
	var out struct {
		DocumentURL string `json:"documentURL"`
	}
	q := `query($p: String!, $k: DocumentKind!, $f: DocumentFormat!, $lang: String) { documentURL(process: $p, kind: $k, format: $f, language: $lang) }`
	if err := c.Do(ctx, q, vars, &out); err != nil {
		fmt.Fprintln(stderr, "rpacloud docs render:", err)
		return 1
	}
	if err := download(ctx, c, out.DocumentURL, output); err != nil {
		fmt.Fprintln(stderr, "rpacloud docs render:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", output)
	return 0
}
