package main

import (
	"context"
	"io"

	"github.com/rpacloud/rpacloud/core/config"
)

// runFmt implements `rpacloud fmt [-check] [-w] [-recursive] PATH...`. The
// logic lives in core/config, where it is tested with the formatter.
func runFmt(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return config.FmtCommand(ctx, args, stdout, stderr)
}
