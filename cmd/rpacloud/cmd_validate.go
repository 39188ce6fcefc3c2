package main

import (
	"context"
	"io"

	"github.com/rpacloud/rpacloud/core/config"
)

// runValidate implements `rpacloud validate PATH...`. The logic lives in
// core/config, where it is tested together with the loader it drives.
func runValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return config.ValidateCommand(ctx, args, stdout, stderr)
}
