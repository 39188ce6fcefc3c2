// Command rpacloud-image builds rpacloud's container images from
// deploy/image/Containerfile without a container engine and writes them as
// one OCI image layout (`make image`); see deploy/README.md, "Images".
//
//	rpacloud-image [--warm] [--out DIR] [--target daemon,robot] [--containerfile F] [--context DIR] [--cache DIR]
//
// Run it as root (mmdebstrap builds the Debian root filesystem with chroot).
// The images are named after their targets in the layout's index, e.g.
// `skopeo copy oci:DIR:daemon docker://registry.example.com/rpacloud:1.0.0`
// or `podman pull oci:DIR:daemon`. `rpacloud-image --out DIR --unpack
// daemon --to ROOT` writes an image's flattened root filesystem.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rpacloud/rpacloud/deploy/image"
)

func main() {
	home, err := os.UserHomeDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpacloud-image: home directory:", err)
		os.Exit(1)
	}
	cache := filepath.Join(home, ".cache", "rpacloud", "image")
	o := image.Options{Log: os.Stderr}
	var targets string
	var warm bool
	var unpack, to string
	flag.StringVar(&o.Containerfile, "containerfile", "deploy/image/Containerfile", "the Containerfile")
	flag.StringVar(&o.Context, "context", ".", "the build context (the repository's root)")
	flag.StringVar(&targets, "target", "daemon,robot", "comma-separated stages to write as images")
	flag.StringVar(&o.Out, "out", filepath.Join(cache, "out"), "the OCI image layout to write (replaced)")
	flag.StringVar(&o.Cache, "cache", cache, "cache of root filesystems, keyed by their inputs")
	flag.BoolVar(&warm, "warm", false, "only build the root filesystems into the cache (what .ci/services.sh runs before the tests)")
	flag.StringVar(&unpack, "unpack", "", "instead of building, write the flattened root filesystem of this image of --out into --to (to inspect it, or run it without an engine)")
	flag.StringVar(&to, "to", "", "the new directory --unpack writes")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "rpacloud-image: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	o.Targets = strings.Split(targets, ",")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if unpack != "" {
		if to == "" {
			fmt.Fprintln(os.Stderr, "rpacloud-image: --unpack needs --to DIR")
			os.Exit(2)
		}
		img, err := image.ReadImage(o.Out, unpack)
		if err == nil {
			err = image.Unpack(img, to)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "rpacloud-image:", err)
			os.Exit(1)
		}
		return
	}
	if warm {
		if err := image.Warm(ctx, o); err != nil {
			fmt.Fprintln(os.Stderr, "rpacloud-image:", err)
			os.Exit(1)
		}
		return
	}
	// The layout is written beside --out and renamed: the old one is
	// removed only once the new one is complete.
	// An existing --out is replaced only when it is an OCI layout (this
	// tool's): `--out .` must not delete a working tree.
	if st, err := os.Stat(o.Out); err == nil {
		if _, lerr := os.Stat(filepath.Join(o.Out, "oci-layout")); !st.IsDir() || lerr != nil {
			fmt.Fprintf(os.Stderr, "rpacloud-image: --out %s exists and is not an OCI image layout; refusing to replace it\n", o.Out)
			os.Exit(2)
		}
	}
	tmp := o.Out + ".new"
	_ = os.RemoveAll(tmp)
	final := o.Out
	o.Out = tmp
	res, err := image.Build(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpacloud-image:", err)
		os.Exit(1)
	}
	if err := os.RemoveAll(final); err != nil {
		fmt.Fprintln(os.Stderr, "rpacloud-image:", err)
		os.Exit(1)
	}
	if err := os.Rename(tmp, final); err != nil {
		fmt.Fprintln(os.Stderr, "rpacloud-image:", err)
		os.Exit(1)
	}
	for _, r := range res {
		fmt.Printf("%s\toci:%s:%s\t%s\n", r.Target, final, r.Target, r.Digest)
	}
}
